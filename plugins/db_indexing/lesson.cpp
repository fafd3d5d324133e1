// Database indexing: why is this query slow, and which index makes it fast?
//
//   table:    orders(id, customer_id, status, created_at, amount) in a heap of pages
//             (page_size / row_bytes rows each); indexes are real B+-trees of pages (btree.hpp)
//             whose entries are (key columns, row id): B = page_size / (8 * columns + 8).
//   problem:  full_scan   -> SELECT ... WHERE customer_id = 42 reads every page of the table:
//                            n / rows_per_page pages for 8 rows.
//   fix:      index       -> descend the B+-tree (ceil(log_B n) pages, root to leaf), read the
//                            matching leaf entries, fetch each row's heap page (none when the
//                            index covers every column the query needs: index-only scan).
//                            Rule-based: any index whose leading column the WHERE clause
//                            constrains is used, even when it matches half the table (then
//                            one random heap page per row costs more than the scan).
//             cost_based  -> estimate the pages of the scan and of each usable index from
//                            statistics (row count, distinct values, most common values,
//                            physical order) and run the cheapest plan: the scan for
//                            status = 'delivered', the index for status = 'disputed'.
//   rules:    leftmost prefix: an index on (a, b) is searchable by a, or a and b, never b alone.
//             writes: every INSERT writes the heap page and descends and writes every index.
//   cost:     a request's service time = query_overhead + pages read x page_read_cost + pages
//             written x page_write_cost + rows examined x row_cost (every page from the SSD: no
//             buffer pool), then it queues for one of `workers` connections.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "btree.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;
using db::BPlusTree;
using db::IndexKey;
using db::TreeWork;

enum class Planner { full_scan, rule, cost };
enum Column : int { id, customer_id, status, created_at, amount };
constexpr int kColumns = 5;
const char* const kColumnNames[kColumns] = {"id", "customer_id", "status", "created_at", "amount"};
const char* const kStatusNames[] = {"delivered", "shipped", "pending", "cancelled", "disputed"};
constexpr double kStatusShares[] = {0.60, 0.20, 0.15, 0.049, 0.001};
constexpr int kStatuses = 5;
constexpr std::int64_t kRowsPerCustomer = 8;
constexpr std::int32_t kYear = 365 * 86400, kDay = 86400;  // created_at spans a year, seconds
constexpr std::uint32_t kAllColumns = (1u << kColumns) - 1;

/// One condition of a WHERE clause: lo <= column <= hi (equality when lo == hi).
struct Condition {
  Column column = id;
  std::int32_t lo = 0, hi = 0;
  bool holds(std::int32_t v) const { return lo <= v && v <= hi; }
};

struct Query {
  std::array<Condition, 2> where{};
  int conditions = 0;
  std::uint32_t select = kAllColumns;  // columns the query returns (bit per column)
};

/// What running one statement cost.
struct Work {
  std::int64_t index_pages = 0, heap_pages = 0, pages_written = 0;
  std::int64_t rows_examined = 0, rows_returned = 0;
  bool sequential = false;  // the heap pages were read in order (a Seq Scan: read-ahead)
};

struct Index {
  std::string name;
  std::vector<Column> columns;
  BPlusTree tree;
  bool uses(Column c) const { return position(c) >= 0; }
  /// The columns an entry holds (the row id is the id column), a bit per column.
  std::uint32_t mask() const {
    std::uint32_t m = 1u << id;
    for (Column c : columns) m |= 1u << c;
    return m;
  }
  int position(Column c) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
      if (columns[i] == c) return static_cast<int>(i);
    return -1;
  }
};

/// A plan: the seq scan (index < 0) or an index scan bounded by its first `bound` columns.
struct Plan {
  int index = -1;
  int bound = 0;
  bool covering = false;
  double est_pages = 0, est_rows = 0;
  double est_time = 0;  // ns: pages and rows at the stated costs
};

/// ANALYZE: what the planner knows of a column.
struct ColumnStats {
  double distinct = 1;
  std::int32_t min = 0, max = 0;
  bool clustered = false;                // values never decrease along the heap (physical order)
  std::vector<double> common_frequency;  // a value's share of the rows, when few distinct values
};

std::vector<std::vector<Column>> parse_indexes(const std::string& spec) {
  std::vector<std::vector<Column>> out;
  std::stringstream all(spec);
  std::string one;
  while (std::getline(all, one, ';')) {
    std::vector<Column> columns;
    std::stringstream names(one);
    std::string name;
    while (std::getline(names, name, ',')) {
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      if (name.empty()) continue;
      const auto* at = std::find(std::begin(kColumnNames), std::end(kColumnNames), name);
      if (at == std::end(kColumnNames))
        throw std::invalid_argument("indexes: unknown column '" + name +
                                    "' (columns: id, customer_id, status, created_at, amount)");
      columns.push_back(static_cast<Column>(at - std::begin(kColumnNames)));
    }
    if (columns.empty()) continue;
    if (columns.size() > db::kMaxKeyColumns)
      throw std::invalid_argument("indexes: at most 3 columns per index, got '" + one + "'");
    out.push_back(columns);
  }
  return out;
}

class Database final : public System {
 public:
  Database(Planner planner, const Params& p, Context& ctx)
      : planner_(planner),
        ctx_(ctx),
        query_kind_(p.string("query")),
        page_size_(p.integer<std::size_t>("page_size")),
        rows_per_page_(page_size_ / p.integer<std::size_t>("row_bytes")),
        overhead_(p.duration("query_overhead")),
        page_read_cost_(p.duration("page_read_cost")),
        seq_page_cost_(p.duration("seq_page_cost")),
        page_write_cost_(p.duration("page_write_cost")),
        row_cost_(p.duration("row_cost")),
        insert_salt_(ctx.salt("inserted rows")),
        pages_read_metric_(ctx.metric("pages_read")),
        pages_written_metric_(ctx.metric("pages_written")),
        rows_examined_metric_(ctx.metric("rows_examined")),
        seq_scans_metric_(ctx.metric("plans", "seq_scan")),
        index_scans_metric_(ctx.metric("plans", "index_scan")),
        index_only_metric_(ctx.metric("plans", "index_only_scan")),
        height_metric_(ctx.metric("index_height")),
        db_(ctx, {.workers = p.integer<int>("workers")},
            [this](Request& r) { ctx_.complete(r, Outcome::ok); }) {
    if (rows_per_page_ < 1)
      throw std::invalid_argument("row_bytes must not exceed page_size: a row fits in a page");
    fill(p.integer<std::size_t>("rows"));
    analyze();
    if (planner_ != Planner::full_scan)
      for (const auto& columns : parse_indexes(p.string("indexes"))) create_index(columns);
    height_metric_.set(indexes_.empty() ? 0 : indexes_.front().tree.height());
  }

  void handle(const Request& r) override {
    const Work w = r.op == Op::write ? insert(r) : select(r);
    const std::int64_t read = w.index_pages + w.heap_pages;
    pages_read_metric_.add(static_cast<double>(read));
    pages_written_metric_.add(static_cast<double>(w.pages_written));
    rows_examined_metric_.add(static_cast<double>(w.rows_examined));
    db_.submit(r, service_time(w));
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "explain") return explain(static_cast<std::uint64_t>(args["key"].as_int()));
    List indexes;  // "stats"
    for (const Index& ix : indexes_)
      indexes.push_back(
          Map{{"name", ix.name},
              {"height", ix.tree.height()},
              {"fanout", static_cast<std::int64_t>(ix.tree.fanout())},
              {"pages", static_cast<std::int64_t>(ix.tree.pages())},
              {"leaves", static_cast<std::int64_t>(ix.tree.leaves())},
              {"entries", static_cast<std::int64_t>(ix.tree.size())},
              {"formula_height", BPlusTree::height_for(ix.tree.size(), ix.tree.fanout())}});
    return Map{{"rows", static_cast<std::int64_t>(rows())},
               {"heap_pages", static_cast<std::int64_t>(heap_pages())},
               {"rows_per_page", static_cast<std::int64_t>(rows_per_page_)},
               {"indexes", std::move(indexes)}};
  }

  Map figures() const override {
    auto per = [](std::int64_t total, std::int64_t count) {
      return count > 0 ? static_cast<double>(total) / static_cast<double>(count) : 0.0;
    };
    std::size_t index_pages = 0;
    for (const Index& ix : indexes_) index_pages += ix.tree.pages();
    return {{"selects", selects_},
            {"inserts", inserts_},
            {"pages_per_select", per(select_work_.index_pages + select_work_.heap_pages, selects_)},
            {"index_pages_per_select", per(select_work_.index_pages, selects_)},
            {"heap_pages_per_select", per(select_work_.heap_pages, selects_)},
            {"rows_examined_per_select", per(select_work_.rows_examined, selects_)},
            {"rows_per_select", per(select_work_.rows_returned, selects_)},
            {"index_scan_share", per(index_plans_, selects_)},
            {"pages_per_insert",
             per(insert_work_.index_pages + insert_work_.heap_pages + insert_work_.pages_written,
                 inserts_)},
            {"index_height", indexes_.empty() ? 0 : indexes_.front().tree.height()},
            {"fanout",
             indexes_.empty() ? 0 : static_cast<std::int64_t>(indexes_.front().tree.fanout())},
            {"table_bytes", static_cast<double>(heap_pages() * page_size_)},
            {"index_bytes_per_row",
             static_cast<double>(index_pages * page_size_) / static_cast<double>(rows())}};
  }

  void reset_stats() override {
    selects_ = inserts_ = index_plans_ = 0;
    select_work_ = insert_work_ = Work{};
  }

 private:
  /// The cost model: pages read in order at seq_page_cost, other pages (index descents, heap
  /// fetches) at page_read_cost, pages written, rows and entries examined, and the overhead.
  Time service_time(const Work& w) const {
    const Time reads = w.sequential
                           ? w.heap_pages * seq_page_cost_ + w.index_pages * page_read_cost_
                           : (w.heap_pages + w.index_pages) * page_read_cost_;
    return overhead_ + reads + w.pages_written * page_write_cost_ + w.rows_examined * row_cost_;
  }
  std::size_t rows() const { return columns_[id].size(); }
  std::size_t heap_pages() const { return (rows() + rows_per_page_ - 1) / rows_per_page_; }
  std::int32_t value(std::uint32_t row, Column c) const { return columns_[c][row]; }

  // ---- the table ------------------------------------------------------------------------------

  /// The same table in every variant: drawn from the lesson's stream (seed + lesson name).
  void fill(std::size_t n) {
    customers_ = std::max<std::int64_t>(1, static_cast<std::int64_t>(n) / kRowsPerCustomer);
    for (auto& column : columns_) column.reserve(n);
    Rng& rng = ctx_.rng();
    for (std::size_t i = 0; i < n; ++i) {
      const auto created = static_cast<std::int32_t>(static_cast<double>(i) * kYear / n);
      append_row(static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(customers_))),
                 draw_status(rng.uniform()), created,
                 static_cast<std::int32_t>(100 + rng.below(99900)));
    }
    spacing_ =
        std::max<std::int32_t>(1, static_cast<std::int32_t>(kYear / std::max<std::size_t>(n, 1)));
    next_created_ = kYear;
  }
  static std::int32_t draw_status(double u) {
    for (int s = 0; s < kStatuses - 1; ++s) {
      if (u < kStatusShares[s]) return s;
      u -= kStatusShares[s];
    }
    return kStatuses - 1;
  }
  void append_row(std::int32_t customer, std::int32_t status, std::int32_t created,
                  std::int32_t amount) {
    columns_[id].push_back(static_cast<std::int32_t>(rows()));
    columns_[customer_id].push_back(customer), columns_[Column::status].push_back(status),
        columns_[created_at].push_back(created), columns_[Column::amount].push_back(amount);
  }

  IndexKey key_of(const Index& ix, std::uint32_t row) const {
    IndexKey k;
    for (std::size_t i = 0; i < ix.columns.size(); ++i) k.columns[i] = value(row, ix.columns[i]);
    k.row = row;
    return k;
  }

  /// CREATE INDEX: sort the entries, bulk-load full pages.
  void create_index(const std::vector<Column>& columns) {
    std::string name = "orders";
    for (Column c : columns) name += std::string("_") + kColumnNames[c];
    const std::size_t fanout = page_size_ / (8 * columns.size() + 8);
    if (fanout < 3) throw std::invalid_argument("page_size too small for an index page");
    Index ix{name + "_idx", columns, BPlusTree(fanout)};
    // Rows in key order: stable sorts by the last column first, then the others (LSD), from
    // row order, so equal keys stay in row order.
    std::vector<std::uint32_t> order(rows()), sorted(rows());
    for (std::uint32_t r = 0; r < rows(); ++r) order[r] = r;
    for (auto c = columns.rbegin(); c != columns.rend(); ++c) {
      const auto& v = columns_[*c];
      const ColumnStats& s = stats_[*c];
      const auto range = static_cast<std::size_t>(s.max - s.min) + 1;
      if (range > 4 * rows() + 1024) {
        std::stable_sort(order.begin(), order.end(),
                         [&](std::uint32_t a, std::uint32_t b) { return v[a] < v[b]; });
        continue;
      }
      std::vector<std::uint32_t> starts(range + 1, 0);  // counting sort
      for (std::uint32_t r : order) ++starts[static_cast<std::size_t>(v[r] - s.min) + 1];
      for (std::size_t i = 1; i <= range; ++i) starts[i] += starts[i - 1];
      for (std::uint32_t r : order) sorted[starts[static_cast<std::size_t>(v[r] - s.min)]++] = r;
      order.swap(sorted);
    }
    std::vector<IndexKey> entries(rows());
    for (std::uint32_t r = 0; r < rows(); ++r) entries[r] = key_of(ix, order[r]);
    ix.tree.bulk_load(entries);
    indexes_.push_back(std::move(ix));
  }

  /// ANALYZE: distinct values, range, physical order and, for few values, their frequencies.
  void analyze() {
    for (int c = 0; c < kColumns; ++c) {
      ColumnStats& s = stats_[c];
      const auto column = static_cast<Column>(c);
      s = ColumnStats{};
      if (rows() == 0) continue;
      const auto& v = columns_[column];
      s.min = s.max = v[0];
      s.clustered = true;
      for (std::size_t r = 1; r < v.size(); ++r) {
        s.min = std::min(s.min, v[r]), s.max = std::max(s.max, v[r]);
        s.clustered = s.clustered && v[r - 1] <= v[r];
      }
      // Distinct values: count the changes along a sorted column, else mark a bitmap.
      std::size_t distinct = 1;
      if (s.clustered) {
        for (std::size_t r = 1; r < v.size(); ++r) distinct += v[r] != v[r - 1];
      } else {
        std::vector<bool> seen(static_cast<std::size_t>(s.max - s.min) + 1);
        distinct = 0;
        for (std::int32_t x : v) {
          auto bit = seen[static_cast<std::size_t>(x - s.min)];
          if (!bit) bit = true, ++distinct;
        }
      }
      s.distinct = static_cast<double>(distinct);
      if (distinct <= 16 && s.min >= 0) {  // few values: keep each one's share of the rows
        s.common_frequency.assign(static_cast<std::size_t>(s.max) + 1, 0.0);
        for (std::int32_t x : v)
          s.common_frequency[static_cast<std::size_t>(x)] += 1.0 / static_cast<double>(rows());
      }
    }
  }

  // ---- statements ---------------------------------------------------------------------------

  /// The query of the `query` parameter with the values drawn from the request key.
  Query query_for(std::uint64_t key) const {
    Query q;
    const auto customer = static_cast<std::int32_t>(key % static_cast<std::uint64_t>(customers_));
    if (query_kind_ == "customer") {
      q.where[q.conditions++] = {customer_id, customer, customer};
    } else if (query_kind_ == "customer_recent") {  // the last 90 days of one customer
      q.where[q.conditions++] = {customer_id, customer, customer};
      q.where[q.conditions++] = {created_at, kYear - 90 * kDay,
                                 std::numeric_limits<std::int32_t>::max()};
    } else if (query_kind_ == "created_range") {  // one day of orders
      const auto from = static_cast<std::int32_t>(Rng::hash(key) % (kYear - kDay));
      q.where[q.conditions++] = {created_at, from, from + kDay - 1};
    } else if (query_kind_ == "customer_amount") {
      q.where[q.conditions++] = {customer_id, customer, customer};
      q.select = 1u << amount;
    } else {  // status
      const auto s = static_cast<std::int32_t>(key % kStatuses);
      q.where[q.conditions++] = {status, s, s};
    }
    return q;
  }

  double selectivity(const Condition& c) const {
    const ColumnStats& s = stats_[c.column];
    if (!s.common_frequency.empty()) {
      double share = 0;
      for (std::int32_t v = std::max(c.lo, 0); v <= std::min(c.hi, s.max); ++v)
        share += s.common_frequency[static_cast<std::size_t>(v)];
      return share;
    }
    if (c.lo == c.hi) return 1 / s.distinct;
    const double width = static_cast<double>(s.max) - s.min + 1;
    const double lo = std::max<double>(c.lo, s.min), hi = std::min<double>(c.hi, s.max);
    return std::clamp((hi - lo + 1) / width, 0.0, 1.0);
  }

  /// How many leading columns of `ix` bound a scan for `q`: equalities, then at most one range.
  static int bound_columns(const Index& ix, const Query& q, const Condition** conditions) {
    int bound = 0;
    for (Column c : ix.columns) {
      const Condition* found = nullptr;
      for (int i = 0; i < q.conditions; ++i)
        if (q.where[i].column == c) found = &q.where[i];
      if (found == nullptr) break;
      conditions[bound++] = found;
      if (found->lo != found->hi) break;
    }
    return bound;
  }

  static std::string milliseconds_text(double ns) {
    std::ostringstream out;
    out.precision(3);
    out << ns / 1e6 << " ms";
    return out.str();
  }

  /// The Seq Scan's plan for `q`.
  Plan plan_for_scan(const Query& q) const {
    double all = 1;
    for (int i = 0; i < q.conditions; ++i) all *= selectivity(q.where[i]);
    const double n = static_cast<double>(rows()), pages = static_cast<double>(heap_pages());
    return {
        -1,      0,
        false,   pages,
        n * all, pages * static_cast<double>(seq_page_cost_) + n * static_cast<double>(row_cost_)};
  }

  /// The plan the variant runs for `q`; `cheapest_index` gets the cheapest usable index plan
  /// (index -1 when none is usable).
  Plan plan_for(const Query& q, Plan* cheapest_index = nullptr) const {
    const double n = static_cast<double>(rows()), pages = static_cast<double>(heap_pages());
    Plan best = plan_for_scan(q);
    if (planner_ == Planner::full_scan) return best;
    Plan cheapest;
    for (std::size_t i = 0; i < indexes_.size(); ++i) {
      const Index& ix = indexes_[i];
      const Condition* bound[db::kMaxKeyColumns];
      const int b = bound_columns(ix, q, bound);
      if (b == 0) continue;  // the leftmost-prefix rule: the index cannot be searched
      double bound_share = 1, index_share = 1;
      for (int j = 0; j < b; ++j) bound_share *= selectivity(*bound[j]);
      std::uint32_t needed = q.select;
      for (int j = 0; j < q.conditions; ++j) {
        needed |= 1u << q.where[j].column;
        if (ix.uses(q.where[j].column)) index_share *= selectivity(q.where[j]);
      }
      Plan p{static_cast<int>(i), b, (needed & ~ix.mask()) == 0, 0, best.est_rows};
      // Heap pages: the rows are fetched in index order; rows of a column stored in order share
      // pages, others land on random pages: m of them touch P (1 - (1 - 1/P)^m) distinct pages
      // (Cardenas), each read once since equal keys come in row order.
      const double fetches = p.covering ? 0 : n * index_share;
      const double heap = stats_[ix.columns[0]].clustered
                              ? std::ceil(fetches / static_cast<double>(rows_per_page_))
                              : pages * (1 - std::pow(1 - 1 / std::max(pages, 1.0), fetches));
      const double entries = n * bound_share;
      const double leaves =
          std::max(1.0, std::ceil(entries / static_cast<double>(ix.tree.fanout())));
      p.est_pages = (ix.tree.height() - 1) + leaves + heap;
      p.est_time = p.est_pages * static_cast<double>(page_read_cost_) +
                   (entries + fetches) * static_cast<double>(row_cost_);
      if (cheapest.index < 0 || p.est_time < cheapest.est_time) cheapest = p;
      if (planner_ == Planner::rule) {  // the most columns bound, then covering, then first
        if (best.index < 0 || b > best.bound || (b == best.bound && p.covering && !best.covering))
          best = p;
      } else if (p.est_time < best.est_time) {
        best = p;
      }
    }
    if (cheapest_index != nullptr) *cheapest_index = cheapest;
    return best;
  }

  Work run(const Query& q, const Plan& plan) const {
    Work w;
    if (plan.index < 0) {  // Seq Scan: every page, every row
      const Condition& first = q.where[0];
      const std::int32_t* values = columns_[first.column].data();
      if (q.conditions == 1) {
        for (std::uint32_t r = 0; r < rows(); ++r) w.rows_returned += first.holds(values[r]);
      } else {
        for (std::uint32_t r = 0; r < rows(); ++r)
          w.rows_returned += first.holds(values[r]) && matches(q, r, 1u << first.column);
      }
      w.rows_examined = static_cast<std::int64_t>(rows());
      w.heap_pages = static_cast<std::int64_t>(heap_pages());
      w.sequential = true;
      return w;
    }
    const Index& ix = indexes_[static_cast<std::size_t>(plan.index)];
    const Condition* bound[db::kMaxKeyColumns];
    bound_columns(ix, q, bound);
    IndexKey from, to;
    for (std::size_t j = 0; j < db::kMaxKeyColumns; ++j) {
      from.columns[j] = std::numeric_limits<std::int32_t>::min();
      to.columns[j] = std::numeric_limits<std::int32_t>::max();
    }
    for (int j = 0; j < plan.bound; ++j)
      from.columns[j] = bound[j]->lo, to.columns[j] = bound[j]->hi;
    from.row = 0;
    to.row = std::numeric_limits<std::uint32_t>::max();
    std::int64_t last_page = -1;
    TreeWork tw;
    ix.tree.scan(from, to, tw, [&](const IndexKey& k) {
      ++w.rows_examined;
      for (int j = 0; j < q.conditions; ++j) {  // Index Cond / Filter on the index's columns
        const int at = ix.position(q.where[j].column);
        if (at >= 0 && !q.where[j].holds(k.columns[static_cast<std::size_t>(at)])) return true;
      }
      if (!plan.covering) {  // a heap fetch: the row's page, unless it is the page just read
        const auto page = static_cast<std::int64_t>(k.row / rows_per_page_);
        if (page != last_page) ++w.heap_pages, last_page = page;
        ++w.rows_examined;
        if (!matches(q, k.row, ix.mask())) return true;
      }
      ++w.rows_returned;
      return true;
    });
    w.index_pages = tw.pages_read;
    return w;
  }

  /// The conditions on columns outside `known` hold for `row`.
  bool matches(const Query& q, std::uint32_t row, std::uint32_t known) const {
    for (int j = 0; j < q.conditions; ++j)
      if (!(known & (1u << q.where[j].column)) && !q.where[j].holds(value(row, q.where[j].column)))
        return false;
    return true;
  }

  Work select(const Request& r) {
    const Query q = query_for(r.key);
    const Plan plan = plan_for(q);
    const Work w = run(q, plan);
    ++selects_;
    select_work_.index_pages += w.index_pages;
    select_work_.heap_pages += w.heap_pages;
    select_work_.rows_examined += w.rows_examined;
    select_work_.rows_returned += w.rows_returned;
    if (plan.index >= 0) ++index_plans_;
    (plan.index < 0  ? seq_scans_metric_
     : plan.covering ? index_only_metric_
                     : index_scans_metric_)
        .add(1);
    return w;
  }

  /// INSERT: append to the heap (one page written), then add an entry to every index.
  Work insert(const Request& r) {
    const std::uint64_t h = Rng::hash(r.id ^ insert_salt_);
    append_row(static_cast<std::int32_t>(r.key % static_cast<std::uint64_t>(customers_)),
               draw_status(static_cast<double>(h >> 11) * 0x1.0p-53), next_created_,
               static_cast<std::int32_t>(100 + (h % 99900)));
    next_created_ += spacing_;
    const auto row = static_cast<std::uint32_t>(rows() - 1);
    Work w;
    w.pages_written = 1;
    TreeWork tw;
    for (Index& ix : indexes_) ix.tree.insert(key_of(ix, row), tw);
    w.index_pages = tw.pages_read;
    w.pages_written += tw.pages_written;
    ++inserts_;
    insert_work_.index_pages += w.index_pages;
    insert_work_.pages_written += w.pages_written;
    if (!indexes_.empty()) height_metric_.set(indexes_.front().tree.height());
    return w;
  }

  // ---- EXPLAIN ------------------------------------------------------------------------------

  std::string describe(const Condition& c) const {
    const std::string name = kColumnNames[c.column];
    auto shown = [&](std::int32_t v) {
      return c.column == status ? "'" + std::string(kStatusNames[v]) + "'" : std::to_string(v);
    };
    if (c.lo == c.hi) return "(" + name + " = " + shown(c.lo) + ")";
    if (c.hi == std::numeric_limits<std::int32_t>::max())
      return "(" + name + " >= " + shown(c.lo) + ")";
    return "(" + name + " >= " + shown(c.lo) + " AND " + name + " <= " + shown(c.hi) + ")";
  }

  /// EXPLAIN ANALYZE of the query a request with this key runs, with the planner's reasoning.
  Value explain(std::uint64_t key) const {
    const Query q = query_for(key);
    Plan cheapest_index;
    const Plan plan = plan_for(q, &cheapest_index);
    const Work w = run(q, plan);
    const std::string actual_time = milliseconds_text(static_cast<double>(service_time(w)));
    std::ostringstream text;
    auto costs = [&](const Plan& p) {
      std::ostringstream c;
      c << "(estimated pages=" << std::llround(p.est_pages) << " rows=" << std::llround(p.est_rows)
        << " time=" << milliseconds_text(p.est_time) << ")";
      return c.str();
    };
    std::string conditions;
    for (int j = 0; j < q.conditions; ++j) conditions += (j ? " AND " : "") + describe(q.where[j]);
    if (plan.index < 0) {
      text << "Seq Scan on orders  " << costs(plan) << " (actual pages=" << w.heap_pages
           << " rows=" << w.rows_returned << " time=" << actual_time
           << ")\n  Filter: " << conditions
           << "\n  Rows Removed by Filter: " << w.rows_examined - w.rows_returned;
    } else {
      const Index& ix = indexes_[static_cast<std::size_t>(plan.index)];
      text << (plan.covering ? "Index Only Scan using " : "Index Scan using ") << ix.name
           << " on orders  " << costs(plan) << " (actual pages=" << w.index_pages + w.heap_pages
           << " rows=" << w.rows_returned << " time=" << actual_time << ")\n  Index Cond: ";
      const Condition* bound[db::kMaxKeyColumns];
      bound_columns(ix, q, bound);
      for (int j = 0; j < plan.bound; ++j) text << (j ? " AND " : "") << describe(*bound[j]);
      text << "\n  Index Pages: " << w.index_pages << " (height " << ix.tree.height()
           << ")\n  Heap Fetches: " << w.heap_pages << " pages";
    }
    // Why this plan: the alternatives the planner compared.
    const std::string scan_pages = std::to_string(heap_pages());
    const Plan seq = plan_for_scan(q);
    std::string why;
    if (planner_ == Planner::full_scan) {
      why = "no index is used: the scan reads all " + scan_pages + " pages";
    } else if (cheapest_index.index < 0) {
      why = "no index's leading column is in the WHERE clause (leftmost prefix): scan all " +
            scan_pages + " pages";
    } else if (plan.index < 0) {
      why = "the scan's " + scan_pages + " pages in sequence (" + milliseconds_text(seq.est_time) +
            ") cost less than the " + std::to_string(std::llround(cheapest_index.est_pages)) +
            " random pages (" + milliseconds_text(cheapest_index.est_time) + ") estimated for " +
            indexes_[static_cast<std::size_t>(cheapest_index.index)].name;
    } else if (planner_ == Planner::rule) {
      why =
          "rule: an index whose leading column is in the WHERE clause is always used (the "
          "scan: " +
          milliseconds_text(seq.est_time) + ")";
    } else {
      why = "cost: " + milliseconds_text(plan.est_time) + " estimated < " +
            milliseconds_text(seq.est_time) + " for the Seq Scan";
    }
    text << "\n  Why: " << why;
    return Map{{"plan", text.str()},
               {"scan", plan.index < 0  ? "seq_scan"
                        : plan.covering ? "index_only_scan"
                                        : "index_scan"},
               {"estimated_pages", plan.est_pages},
               {"estimated_rows", plan.est_rows},
               {"seq_scan_pages", static_cast<std::int64_t>(heap_pages())},
               {"index_pages", w.index_pages},
               {"heap_pages", w.heap_pages},
               {"rows", w.rows_returned},
               {"time", to_seconds(service_time(w))}};
  }

  Planner planner_;
  Context& ctx_;
  std::string query_kind_;
  std::size_t page_size_, rows_per_page_;
  Time overhead_, page_read_cost_, seq_page_cost_, page_write_cost_, row_cost_;
  std::uint64_t insert_salt_;
  Metric& pages_read_metric_;
  Metric& pages_written_metric_;
  Metric& rows_examined_metric_;
  Metric& seq_scans_metric_;
  Metric& index_scans_metric_;
  Metric& index_only_metric_;
  Metric& height_metric_;

  // The heap, one vector per column (row r lives on page r / rows_per_page); id is r.
  std::array<std::vector<std::int32_t>, kColumns> columns_;  // id is the row number
  std::int64_t customers_ = 1;
  std::int32_t next_created_ = 0, spacing_ = 1;
  std::vector<Index> indexes_;
  ColumnStats stats_[kColumns];

  Server<Request> db_;
  std::int64_t selects_ = 0, inserts_ = 0, index_plans_ = 0;
  Work select_work_, insert_work_;
};

LessonInfo info() {
  return {
      "db_indexing",
      "Database indexes: a full table scan per query -> B+-tree indexes and a cost-based planner",
      "Without an index, SELECT ... WHERE customer_id = 42 reads every page of the table to "
      "find 8 rows: 1563 pages of 8 KiB for 100 000 rows, 156 ms at 0.1 ms per SSD page, and "
      "it grows with the table. A composite index in the wrong column order, or an index on a "
      "column that matches a fifth of the table, is no better; and every index taxes every "
      "INSERT.",
      "A B+-tree index finds the rows in ceil(log_B n) page reads (B = entries per page, 512 "
      "for 8 KiB pages and one 8-byte key) plus one heap page per row; a covering index needs "
      "no heap page at all. Order composite columns for the queries (equality columns first: "
      "an (a, b) index serves a and a-and-b, never b alone), and let a cost-based planner "
      "choose the scan when an index would fetch too many rows.",
      {"PostgreSQL nbtree (B+-tree with high keys, heap TID as the last key column, "
       "EXPLAIN ANALYZE, Index Only Scan, INCLUDE columns)",
       "MySQL InnoDB (clustered primary key, secondary indexes, the leftmost-prefix rule)",
       "SQLite (B-tree tables and indexes, the query planner's cost estimates)",
       "Bayer & McCreight 1972, \"Organization and Maintenance of Large Ordered Indexes\"",
       "Selinger et al. 1979, \"Access Path Selection in a Relational Database Management "
       "System\" (System R's cost-based optimizer)"},
      {{"full_scan", true, "no index: every SELECT reads every page (Seq Scan)"},
       {"index", false,
        "B+-tree indexes (`indexes`), used whenever the WHERE clause constrains an index's "
        "leading column (rule-based)"},
       {"cost_based", false,
        "the same indexes; the planner estimates the pages of the scan and of each usable "
        "index from statistics and runs the cheapest"}},
      {{"rows", ParamType::integer, 100000, "rows in the table at the start", 1, 2e7},
       {"indexes", ParamType::string, "customer_id",
        "indexes: column lists separated by ';', columns by ',' (e.g. \"customer_id; "
        "customer_id,created_at; status\"); columns id, customer_id, status, created_at, amount; "
        "full_scan has none"},
       {"query",
        ParamType::string,
        "customer",
        "what every read runs (values from the request key): customer (WHERE customer_id = ?), "
        "customer_recent (customer_id = ? AND created_at >= the last 90 days), created_range "
        "(created_at within one day), customer_amount (SELECT amount WHERE customer_id = ?), "
        "status (WHERE status = ?: 60/20/15/4.9/0.1 % of the rows)",
        -1e300,
        1e300,
        {"customer", "customer_recent", "created_range", "customer_amount", "status"}},
       {"page_size", ParamType::integer, 8192, "bytes per page (table and index)", 64, 1 << 20},
       {"row_bytes", ParamType::integer, 128, "bytes per table row", 16, 1 << 20},
       {"page_read_cost", ParamType::duration, "100us",
        "time to read one page at a random place (an index page, a heap fetch; SSD)", 0, 10},
       {"seq_page_cost", ParamType::duration, "25us",
        "time per page read in sequence (a Seq Scan, with read-ahead)", 0, 10},
       {"page_write_cost", ParamType::duration, "100us", "time to write one page", 0, 10},
       {"row_cost", ParamType::duration, "200ns", "CPU time per row or index entry examined", 0, 1},
       {"query_overhead", ParamType::duration, "50us",
        "fixed time per statement (network, parse, plan)", 0, 10},
       {"workers", ParamType::integer, 16, "statements the database runs at once", 1, 100000}},
      {},
      {{"explain",
        "EXPLAIN ANALYZE of the query a request with this key runs: plan (text, with the "
        "planner's reason), scan, estimated_pages, estimated_rows, seq_scan_pages, index_pages, "
        "heap_pages, rows, time (the statement's service time, seconds)",
        {{"key", ParamType::integer, 0, "request key (picks the values)", 0, 9.2e18}}},
       {"stats",
        "rows, heap_pages, rows_per_page and per index: name, height, formula_height "
        "(ceil(log_B entries)), fanout (B), pages, leaves, entries",
        {}}},
      {{"pages_read", MetricSpec::Kind::counter, "pages read (index and heap)"},
       {"pages_written", MetricSpec::Kind::counter, "pages written by INSERTs (heap and index)"},
       {"rows_examined", MetricSpec::Kind::counter, "rows and index entries examined"},
       {"plans",
        MetricSpec::Kind::counter,
        "SELECTs by plan",
        "plan",
        {"seq_scan", "index_scan", "index_only_scan"}},
       {"index_height", MetricSpec::Kind::gauge, "levels of the first index (root to leaf)"}},
      {{"selects", Unit::count, "SELECTs run"},
       {"inserts", Unit::count, "INSERTs run"},
       {"pages_per_select", Unit::number, "pages read per SELECT (index + heap)"},
       {"index_pages_per_select", Unit::number, "index pages read per SELECT"},
       {"heap_pages_per_select", Unit::number, "table (heap) pages read per SELECT"},
       {"rows_examined_per_select", Unit::number, "rows and index entries examined per SELECT"},
       {"rows_per_select", Unit::number, "rows returned per SELECT"},
       {"index_scan_share", Unit::fraction, "SELECTs that used an index"},
       {"pages_per_insert", Unit::number, "pages read and written per INSERT"},
       {"index_height", Unit::count, "levels of the first index, root to leaf"},
       {"fanout", Unit::count, "entries per page of the first index (B)"},
       {"table_bytes", Unit::bytes, "size of the table (heap pages x page_size)"},
       {"index_bytes_per_row", Unit::bytes, "bytes of every index together per table row"}},
      /*uses_service_time=*/false};  // the pages a statement touches set its time
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Planner> planners[] = {
      {"full_scan", Planner::full_scan}, {"index", Planner::rule}, {"cost_based", Planner::cost}};
  return std::make_unique<Database>(variant_value(variant, planners), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
