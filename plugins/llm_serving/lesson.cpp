// LLM serving: how an inference server batches sequences and spends its KV-cache memory, and
// how a router spreads requests over replicas.
//
//   problem:  static_batching -> wait for a batch (or batch_wait), prefill it padded to its
//             longest prompt, decode until its LONGEST output ends, then answer everybody.
//             A short answer waits for the long one; finished rows still cost decode time;
//             each sequence reserves max_sequence_tokens of KV memory, so few fit.
//   fix:      continuous_batching (Orca) -> schedule per iteration: a sequence joins as soon
//             as memory allows and leaves the moment it ends. Memory is still reserved for
//             max_sequence_tokens per sequence (contiguous KV): the batch stays small.
//   fix:      paged_kv (vLLM / PagedAttention) -> continuous batching with KV memory in
//             blocks of block_tokens, allocated as the sequence grows: only the last block
//             is partly empty, so many more sequences fit; when memory runs out the newest
//             sequence is preempted and recomputed later. Cached prompt prefixes (a system
//             prompt, a document) are shared blocks: a hit skips their prefill.
//   routing:  round_robin -> least_tokens -> prefix_aware: send a request with a prefix to the
//             replica that served that prefix last (it caches its KV blocks), unless that
//             replica is overloaded; a new prefix goes to the least loaded replica.
//
// Model (per replica; every parameter can be set):
//   prompt and output lengths ~ lognormal(median, p99), capped, drawn per request from
//   (seed, request id): the same in every variant.
//   iteration time = decode_base + decode_per_sequence * batch + prefill_per_token * (prompt
//   tokens prefilled in this iteration); each sequence in the batch gains one token per
//   iteration (its first at the end of the iteration that prefills it).
//   KV memory = kv_memory / kv_bytes_per_token tokens. The workload's service time is unused.
#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/fifo.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Batching { static_batches, continuous, paged };
enum class Routing { round_robin, least_tokens, prefix_aware };

/// One request as the server sees it.
struct Sequence {
  Request request;
  int prompt = 0, output = 0;  // tokens
  int prefix = -1;             // shared prompt prefix id, -1: none
  int generated = 0;           // output tokens produced so far
  int held = 0;                // KV tokens this sequence holds
  int reserved = 0;            // KV tokens of memory allocated to it
  Time first_token = -1;
};

/// What every replica's engine reports to the lesson (shared statistics of the system).
struct Stats {
  Histogram ttft, tpot;  // ns, ns per token
  std::int64_t output_tokens = 0, prefill_tokens = 0, saved_tokens = 0, prefix_lookups = 0,
               prefix_hits = 0, memory_waits = 0, preemptions = 0, recomputed_tokens = 0;
  double busy_ns = 0, held_ns = 0, reserved_ns = 0, batch_ns = 0;  // time integrals
  Time start = 0, last_completion = 0;

  void reset(Time now) {
    ttft.reset();
    tpot.reset();
    output_tokens = prefill_tokens = saved_tokens = prefix_lookups = prefix_hits = 0;
    memory_waits = preemptions = recomputed_tokens = 0;
    busy_ns = held_ns = reserved_ns = batch_ns = 0;
    start = last_completion = now;
  }
};

/// The lesson's exported counters (never reset: Prometheus counters only grow).
struct Meters {
  Metric &output_tokens, &prefill_tokens, &saved_tokens, &preemptions, &memory_waits;
};

struct Config {
  Batching batching;
  int capacity = 0;  // KV tokens for sequences
  int block = 16, max_sequence = 2048, max_batch = 256, prefix_tokens = 0, prefix_cache = 0;
  std::size_t max_waiting = 0;
  Time decode_base = 0, prefill_per_token = 0, batch_wait = 0;
  double decode_per_sequence = 0;  // ns
};

/// One replica: an accelerator with its KV memory, a waiting queue and a batch.
class Engine {
 public:
  Engine(const Config& config, Context& ctx, Stats& stats, Meters& meters)
      : c_(config), ctx_(ctx), stats_(stats), meters_(meters), free_(config.capacity) {
    running_.reserve(static_cast<std::size_t>(c_.max_batch));
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Queue a sequence (false: the queue is full, the caller rejects it).
  bool submit(Sequence s) {
    if (waiting_.size() >= c_.max_waiting) return false;
    outstanding_ += s.prompt;
    waiting_.push_back(s);
    ++pushed_;
    if (c_.batching == Batching::static_batches)
      schedule_static();
    else
      step();
    return true;
  }
  /// Tokens of the requests not finished yet (prompt + generated): the router's load signal.
  std::int64_t outstanding_tokens() const { return outstanding_; }
  std::int64_t output_tokens() const { return output_; }
  int running() const { return static_cast<int>(running_.size()); }
  std::size_t waiting() const { return waiting_.size() + preempted_.size(); }
  int held_tokens() const { return held_; }
  void reset_output() { output_ = 0; }

 private:
  // ---- continuous batching (contiguous or paged KV) ----
  void step() {
    if (busy_) return;
    grow_running();
    int prefill = 0;
    while (static_cast<int>(running_.size()) < c_.max_batch) {
      Fifo<Sequence>& queue = !preempted_.empty() ? preempted_ : waiting_;
      if (queue.empty()) break;
      Sequence& s = queue.front();
      const bool hit = c_.prefix_cache > 0 && s.prefix >= 0 && s.generated == 0 && cached(s.prefix);
      const int shared = c_.prefix_cache > 0 && s.prefix >= 0 ? c_.prefix_tokens : 0;
      // A recomputed sequence prefills its prompt and the tokens it had generated.
      const int to_prefill = s.prompt + s.generated - (hit ? shared : 0);
      const int hold = s.prompt + s.generated - shared;
      const int need = c_.batching == Batching::paged ? blocks_for(hold + 1) : c_.max_sequence;
      if (need > free_) {
        count_memory_waits();
        break;
      }
      if (c_.prefix_cache > 0 && s.prefix >= 0 && s.generated == 0) {
        ++stats_.prefix_lookups;
        touch(s.prefix);
        if (hit) {
          ++stats_.prefix_hits;
          stats_.saved_tokens += shared;
          meters_.saved_tokens.add(shared);
        }
      }
      if (s.generated > 0) stats_.recomputed_tokens += to_prefill;
      if (&queue == &waiting_) ++popped_;
      Sequence admitted = queue.pop_front();
      admitted.held = hold;
      admitted.reserved = need;
      free_ -= need;
      held_ += hold;
      prefill += to_prefill;
      running_.push_back(admitted);
    }
    if (running_.empty()) return;
    stats_.prefill_tokens += prefill;
    meters_.prefill_tokens.add(prefill);
    const Time t = c_.decode_base +
                   round_time(c_.decode_per_sequence * static_cast<double>(running_.size())) +
                   c_.prefill_per_token * prefill;
    account(t, static_cast<int>(running_.size()), held_, c_.capacity - free_);
    busy_ = true;
    ctx_.after(t, [this] { end_step(); });
  }

  /// Paged KV: every running sequence needs room for the token this iteration writes; when
  /// no block is free, preempt the newest sequence (its blocks are freed, it is recomputed).
  void grow_running() {
    if (c_.batching != Batching::paged) return;
    for (std::size_t i = 0; i < running_.size();) {
      Sequence& s = running_[i];
      if (s.held + 1 <= s.reserved) {
        ++i;
      } else if (free_ >= c_.block) {
        free_ -= c_.block;
        s.reserved += c_.block;
        ++i;
      } else {
        Sequence& newest = running_.back();  // running_ is in admission order
        free_ += newest.reserved;
        held_ -= newest.held;
        newest.held = newest.reserved = 0;
        ++stats_.preemptions;
        meters_.preemptions.add(1);
        preempted_.push_back(newest);
        running_.pop_back();
      }
    }
  }

  void end_step() {
    busy_ = false;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < running_.size(); ++i) {
      Sequence& s = running_[i];
      produce_token(s);
      ++s.held;
      ++held_;
      if (s.generated == s.output) {
        free_ += s.reserved;
        held_ -= s.held;
        finish(s, ctx_.now());
      } else {
        running_[kept++] = s;
      }
    }
    running_.resize(kept);
    step();
  }

  // ---- static batching ----
  void schedule_static() {
    if (busy_ || waiting_.empty()) return;
    if (static_cast<int>(waiting_.size()) >= static_batch()) return run_static_batch();
    if (!wait_timer_) {
      const Time deadline = waiting_.front().request.arrival + c_.batch_wait;
      wait_timer_ = ctx_.after(std::max<Time>(0, deadline - ctx_.now()), [this] {
        wait_timer_ = {};
        if (!busy_) run_static_batch();
      });
    }
  }
  int static_batch() const { return std::min(c_.max_batch, c_.capacity / c_.max_sequence); }

  /// Take a batch, prefill it padded to its longest prompt, decode until its longest output
  /// ends (finished rows are padding), answer every sequence at the end.
  void run_static_batch() {
    ctx_.cancel(wait_timer_);
    wait_timer_ = {};
    const int size = std::min(static_batch(), static_cast<int>(waiting_.size()));
    int longest_prompt = 0, longest_output = 0;
    for (int i = 0; i < size; ++i) {
      Sequence s = waiting_.pop_front();
      ++popped_;
      longest_prompt = std::max(longest_prompt, s.prompt);
      longest_output = std::max(longest_output, s.output);
      stats_.prefill_tokens += s.prompt;
      meters_.prefill_tokens.add(s.prompt);
      running_.push_back(s);
    }
    if (static_cast<int>(running_.size()) == static_batch() && static_batch() < c_.max_batch)
      count_memory_waits();
    const int batch = static_cast<int>(running_.size());
    const int reserved = batch * c_.max_sequence;
    const Time prefill = c_.prefill_per_token * static_cast<Time>(batch) * longest_prompt;
    const Time iteration =
        c_.decode_base + round_time(c_.decode_per_sequence * static_cast<double>(batch));
    // Iteration k (k = 1 is the prefill) writes token k of every row still generating.
    int held = 0;
    for (const Sequence& s : running_) held += s.prompt;
    Time t = prefill;
    account(prefill, batch, held, reserved);
    for (int k = 1; k <= longest_output; ++k) {
      for (const Sequence& s : running_) held += k <= s.output ? 1 : 0;
      if (k < longest_output) account(iteration, batch, held, reserved), t += iteration;
    }
    const Time start = ctx_.now();
    for (Sequence& s : running_) {
      s.first_token = start + prefill;
      stats_.ttft.record(s.first_token - s.request.arrival);
      s.generated = s.output;
    }
    busy_ = true;
    ctx_.after(t, [this] { end_static_batch(); });
  }

  void end_static_batch() {
    busy_ = false;
    for (Sequence& s : running_) finish(s, ctx_.now());
    running_.clear();
    schedule_static();
  }

  // ---- shared ----
  /// Memory is full while requests wait: count each waiting request once (the queue holds
  /// the requests numbered [popped_, pushed_); those from marked_ on are not counted yet).
  void count_memory_waits() {
    const std::int64_t fresh = pushed_ - std::max(marked_, popped_);
    if (fresh <= 0) return;
    stats_.memory_waits += fresh;
    meters_.memory_waits.add(static_cast<double>(fresh));
    marked_ = pushed_;
  }
  void produce_token(Sequence& s) {
    ++s.generated;
    ++outstanding_;
    if (s.first_token < 0) {
      s.first_token = ctx_.now();
      stats_.ttft.record(s.first_token - s.request.arrival);
    }
  }
  void finish(const Sequence& s, Time now) {
    if (s.output > 1) stats_.tpot.record((now - s.first_token) / (s.output - 1));
    stats_.output_tokens += s.output;
    output_ += s.output;
    meters_.output_tokens.add(s.output);
    outstanding_ -= s.prompt + (c_.batching == Batching::static_batches ? 0 : s.output);
    stats_.last_completion = now;
    ctx_.complete(s.request, Outcome::ok);
  }
  void account(Time t, int batch, int held, int reserved) {
    const double d = static_cast<double>(t);
    stats_.busy_ns += d;
    stats_.batch_ns += d * batch;
    stats_.held_ns += d * held;
    stats_.reserved_ns += d * reserved;
  }
  int blocks_for(int tokens) const { return (tokens + c_.block - 1) / c_.block * c_.block; }
  /// Is `prefix` in the LRU prefix cache?
  bool cached(int prefix) const {
    return std::find(prefix_lru_.begin(), prefix_lru_.end(), prefix) != prefix_lru_.end();
  }
  /// `prefix` was just used: move it (or insert it, evicting the least recent) to the front.
  void touch(int prefix) {
    auto it = std::find(prefix_lru_.begin(), prefix_lru_.end(), prefix);
    if (it != prefix_lru_.end())
      prefix_lru_.erase(it);
    else if (static_cast<int>(prefix_lru_.size()) >= c_.prefix_cache)
      prefix_lru_.pop_back();
    prefix_lru_.insert(prefix_lru_.begin(), prefix);
  }

  const Config& c_;
  Context& ctx_;
  Stats& stats_;
  Meters& meters_;
  Fifo<Sequence> waiting_, preempted_;
  std::vector<Sequence> running_;  // in admission order
  std::vector<int> prefix_lru_;    // most recent first
  int free_ = 0, held_ = 0;
  std::int64_t outstanding_ = 0, output_ = 0;
  std::int64_t pushed_ = 0, popped_ = 0, marked_ = 0;  // waiting_ counts, for memory waits
  bool busy_ = false;
  EventId wait_timer_;
};

class LlmServing final : public System {
 public:
  LlmServing(Batching batching, const Params& p, Context& ctx)
      : ctx_(ctx),
        routing_(routing_of(p.string("routing"))),
        prompt_(Distribution::lognormal(p.real("prompt_median"), p.real("prompt_p99"))
                    .capped(p.real("max_prompt_tokens"))),
        output_(Distribution::lognormal(p.real("output_median"), p.real("output_p99"))
                    .capped(p.real("max_output_tokens"))),
        prefix_share_(p.real("prefix_share")),
        prefixes_(p.integer<int>("prefixes")),
        balance_(p.real("balance")),
        length_salt_(ctx.salt("lengths")),
        prefix_salt_(ctx.salt("prefix")),
        meters_{ctx.metric("output_tokens"), ctx.metric("prefill_tokens"),
                ctx.metric("prefill_tokens_saved"), ctx.metric("preemptions"),
                ctx.metric("memory_waits")},
        batch_metric_(ctx.metric("batch_size")),
        waiting_metric_(ctx.metric("waiting")),
        kv_metric_(ctx.metric("kv_used")) {
    config_.batching = batching;
    const double kv_tokens = p.real("kv_memory") / p.real("kv_bytes_per_token");
    config_.block = p.integer<int>("block_tokens");
    config_.max_sequence = p.integer<int>("max_sequence_tokens");
    config_.max_batch = p.integer<int>("max_batch");
    config_.prefix_tokens = p.integer<int>("prefix_tokens");
    config_.prefix_cache = batching == Batching::paged ? p.integer<int>("prefix_cache") : 0;
    config_.max_waiting = p.integer<std::size_t>("max_waiting");
    config_.decode_base = p.duration("decode_base");
    config_.decode_per_sequence = static_cast<double>(p.duration("decode_per_sequence"));
    config_.prefill_per_token = p.duration("prefill_per_token");
    config_.batch_wait = p.duration("batch_wait");
    // The prefix cache's blocks are set aside from the sequences' memory.
    config_.capacity =
        static_cast<int>(std::floor(kv_tokens)) - config_.prefix_cache * config_.prefix_tokens;
    if (p.real("max_prompt_tokens") + config_.prefix_tokens + p.real("max_output_tokens") >
        config_.max_sequence)
      throw std::invalid_argument(
          "max_prompt_tokens + prefix_tokens + max_output_tokens must fit in max_sequence_tokens");
    if (config_.capacity < config_.max_sequence + config_.block)
      throw std::invalid_argument(
          "the KV memory (minus the prefix cache) holds fewer than "
          "max_sequence_tokens tokens: not one sequence fits");
    prefix_home_.assign(static_cast<std::size_t>(prefixes_), -1);
    const int replicas = p.integer<int>("replicas");
    for (int i = 0; i < replicas; ++i)
      engines_.push_back(std::make_unique<Engine>(config_, ctx, stats_, meters_));
  }

  void handle(const Request& r) override {
    Sequence s;
    s.request = r;
    Rng draw(Rng::hash(r.id ^ length_salt_));
    s.prompt = std::max(1, static_cast<int>(std::lround(prompt_.sample(draw))));
    s.output = std::max(1, static_cast<int>(std::lround(output_.sample(draw))));
    Rng prefix_draw(Rng::hash(r.id ^ prefix_salt_));
    if (prefix_draw.chance(prefix_share_)) {
      s.prefix = static_cast<int>(prefix_draw.below(static_cast<std::uint64_t>(prefixes_)));
      s.prompt += config_.prefix_tokens;
    }
    Engine& engine = *engines_[route(s)];
    if (!engine.submit(s)) ctx_.complete(r, Outcome::rejected);
    update_gauges();
  }

  Map figures() const override {
    const double elapsed = to_seconds(std::max<Time>(stats_.last_completion - stats_.start, 1));
    const double busy = std::max(stats_.busy_ns, 1.0);
    const double capacity = static_cast<double>(config_.capacity);
    std::int64_t most = 0, total = 0;
    for (const auto& e : engines_)
      most = std::max(most, e->output_tokens()), total += e->output_tokens();
    return {
        {"output_tokens", stats_.output_tokens},
        {"tokens_per_second", static_cast<double>(stats_.output_tokens) / elapsed},
        {"ttft_mean", stats_.ttft.mean() * 1e-9},
        {"ttft_p50", to_seconds(stats_.ttft.quantile(0.5))},
        {"ttft_p99", to_seconds(stats_.ttft.quantile(0.99))},
        {"tpot_mean", stats_.tpot.mean() * 1e-9},
        {"tpot_p99", to_seconds(stats_.tpot.quantile(0.99))},
        {"mean_batch", stats_.batch_ns / busy},
        {"kv_used", stats_.held_ns / busy / capacity},
        {"kv_reserved", stats_.reserved_ns / busy / capacity},
        {"fragmentation", stats_.reserved_ns > 0 ? 1 - stats_.held_ns / stats_.reserved_ns : 0.0},
        {"kv_capacity_tokens", static_cast<std::int64_t>(config_.capacity)},
        {"memory_waits", stats_.memory_waits},
        {"preemptions", stats_.preemptions},
        {"recomputed_tokens", stats_.recomputed_tokens},
        {"prefill_tokens", stats_.prefill_tokens},
        {"prefill_tokens_saved", stats_.saved_tokens},
        {"prefix_hit_rate",
         stats_.prefix_lookups > 0
             ? static_cast<double>(stats_.prefix_hits) / static_cast<double>(stats_.prefix_lookups)
             : 0.0},
        {"replica_imbalance", total > 0 ? static_cast<double>(most) *
                                              static_cast<double>(engines_.size()) /
                                              static_cast<double>(total)
                                        : 1.0}};
  }

  void reset_stats() override {
    stats_.reset(ctx_.now());
    for (auto& e : engines_) e->reset_output();
  }

 private:
  static Routing routing_of(const std::string& name) {
    if (name == "least_tokens") return Routing::least_tokens;
    if (name == "prefix_aware") return Routing::prefix_aware;
    return Routing::round_robin;
  }

  std::size_t route(const Sequence& s) {
    const std::size_t n = engines_.size();
    if (n == 1) return 0;
    const std::size_t start = next_++ % n;
    if (routing_ == Routing::round_robin) return start;
    // The fewest outstanding tokens; ties go round robin (the scan starts at `start`).
    std::size_t least = start;
    double total = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t i = (start + j) % n;
      total += static_cast<double>(engines_[i]->outstanding_tokens());
      if (engines_[i]->outstanding_tokens() < engines_[least]->outstanding_tokens()) least = i;
    }
    if (routing_ == Routing::least_tokens || s.prefix < 0) return least;
    // The replica that served this prefix last (it holds its KV blocks), unless it carries
    // more than (1 + balance) times the mean load plus one max-size request; a new (or moved)
    // prefix goes to the least loaded replica, which becomes its home.
    int& home = prefix_home_[static_cast<std::size_t>(s.prefix)];
    const double limit = (1 + balance_) * total / static_cast<double>(n) + config_.max_sequence;
    if (home < 0 ||
        static_cast<double>(engines_[static_cast<std::size_t>(home)]->outstanding_tokens()) > limit)
      home = static_cast<int>(least);
    return static_cast<std::size_t>(home);
  }

  void update_gauges() {
    double running = 0, waiting = 0, held = 0;
    for (const auto& e : engines_)
      running += e->running(), waiting += static_cast<double>(e->waiting()),
          held += e->held_tokens();
    batch_metric_.set(running);
    waiting_metric_.set(waiting);
    kv_metric_.set(held /
                   (static_cast<double>(config_.capacity) * static_cast<double>(engines_.size())));
  }

  Context& ctx_;
  Config config_;
  Routing routing_;
  Distribution prompt_, output_;
  double prefix_share_;
  int prefixes_;
  double balance_;
  std::uint64_t length_salt_, prefix_salt_;
  Meters meters_;
  Metric &batch_metric_, &waiting_metric_, &kv_metric_;
  Stats stats_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::size_t next_ = 0;
  std::vector<int> prefix_home_;  // prefix -> replica that served it last (-1: none yet)
};

LessonInfo info() {
  return {
      "llm_serving",
      "LLM serving: static batching -> continuous batching -> paged KV cache; prefix-aware routing",
      "A static batch waits to fill, then runs until its longest output ends: short answers "
      "wait for long ones and finished rows still cost decode steps. Each sequence reserves "
      "KV-cache memory for the maximum sequence length, most of which it never uses, so only "
      "a few sequences fit on the accelerator and the memory-bound decode step runs nearly "
      "empty. Across replicas, round robin scatters requests that share a prompt prefix, so "
      "every replica prefills the same system prompt again.",
      "Continuous (iteration-level) batching lets sequences join and leave at every decode "
      "iteration. Paging the KV cache in small blocks allocated as sequences grow wastes at "
      "most one partial block per sequence, so several times more sequences share each "
      "(memory-bound) iteration: tokens per second grow with the batch. Prefix-aware routing "
      "sends requests sharing a prefix to the replica that caches its KV blocks.",
      {"vLLM (PagedAttention, Kwon et al., SOSP 2023)", "Orca (Yu et al., OSDI 2022)",
       "Hugging Face Text Generation Inference", "NVIDIA TensorRT-LLM (in-flight batching)",
       "SGLang (RadixAttention prefix caching, cache-aware router)",
       "llm-d / vLLM production stack (prefix-aware routing)"},
      {{"static_batching", true,
        "wait for a batch, run it until its longest sequence ends; KV reserved for the maximum "
        "length"},
       {"continuous_batching", false,
        "sequences join and leave every iteration (Orca); KV still reserved for the maximum "
        "length"},
       {"paged_kv", false,
        "continuous batching with KV memory in blocks (vLLM); preemption by recomputation; "
        "prefix cache"}},
      {{"replicas", ParamType::integer, 1, "model replicas (one accelerator each)", 1, 1024},
       {"routing",
        ParamType::string,
        "round_robin",
        "how requests are spread over replicas: round_robin, least_tokens (fewest prompt + "
        "generated tokens outstanding), prefix_aware (the replica that served the prefix last, "
        "unless overloaded)",
        -1e300,
        1e300,
        {"round_robin", "least_tokens", "prefix_aware"}},
       {"balance", ParamType::real, 0.5,
        "prefix_aware: a prefix's replica is skipped when its outstanding tokens exceed "
        "(1 + balance) x the mean plus max_sequence_tokens",
        0, 1000},
       {"kv_memory", ParamType::real, 12.0 * 1024 * 1024 * 1024,
        "bytes of accelerator memory for the KV cache (after the weights)", 1, 1e15},
       {"kv_bytes_per_token", ParamType::real, 800.0 * 1024,
        "KV bytes per token: 2 x layers x hidden x 2 bytes (800 KiB for a 13B model in fp16)", 1,
        1e12},
       {"block_tokens", ParamType::integer, 16, "paged_kv: tokens per KV block", 1, 65536},
       {"max_sequence_tokens", ParamType::integer, 2048,
        "context length: what a contiguous KV reservation holds per sequence", 2, 1e7},
       {"max_batch", ParamType::integer, 256, "most sequences in one iteration", 1, 1e6},
       {"max_waiting", ParamType::integer, 128,
        "waiting requests per replica; more are rejected (TGI's max concurrent requests)", 1, 1e9},
       {"prompt_median", ParamType::real, 256.0, "median prompt tokens (lognormal)", 1, 1e7},
       {"prompt_p99", ParamType::real, 1024.0, "99th percentile of prompt tokens", 1, 1e7},
       {"max_prompt_tokens", ParamType::integer, 1024, "prompt lengths are capped here", 1, 1e7},
       {"output_median", ParamType::real, 128.0, "median output tokens (lognormal)", 1, 1e7},
       {"output_p99", ParamType::real, 768.0, "99th percentile of output tokens", 1, 1e7},
       {"max_output_tokens", ParamType::integer, 1024, "output lengths are capped here", 1, 1e7},
       {"decode_base", ParamType::duration, "20ms",
        "cost model: a decode iteration's fixed cost (reading the weights: memory-bound)", 0, 60},
       {"decode_per_sequence", ParamType::duration, "0.25ms",
        "cost model: extra decode time per sequence in the batch (reading its KV cache)", 0, 60},
       {"prefill_per_token", ParamType::duration, "0.1ms",
        "cost model: prefill time per prompt token (compute-bound)", 0, 60},
       {"batch_wait", ParamType::duration, "200ms",
        "static_batching: longest wait for a full batch after the oldest request arrived", 0, 3600},
       {"prefix_share", ParamType::real, 0.0,
        "share of requests whose prompt starts with a shared prefix (system prompt, document)", 0,
        1},
       {"prefixes", ParamType::integer, 16, "distinct shared prefixes, uniform", 1, 1e6},
       {"prefix_tokens", ParamType::integer, 0,
        "tokens of a shared prefix, added to the drawn prompt length", 0, 1e7},
       {"prefix_cache", ParamType::integer, 4,
        "paged_kv: prefixes kept in each replica's prefix cache (LRU), their blocks set aside "
        "from the KV memory",
        0, 1e6}},
      {},
      {},
      {{"output_tokens", MetricSpec::Kind::counter, "output tokens generated"},
       {"prefill_tokens", MetricSpec::Kind::counter,
        "prompt tokens prefilled (recomputation included)"},
       {"prefill_tokens_saved", MetricSpec::Kind::counter,
        "prompt tokens served from the prefix cache"},
       {"preemptions", MetricSpec::Kind::counter, "sequences preempted for memory (paged_kv)"},
       {"memory_waits", MetricSpec::Kind::counter,
        "requests that waited because KV memory was full"},
       {"batch_size", MetricSpec::Kind::gauge, "sequences running now (all replicas)"},
       {"waiting", MetricSpec::Kind::gauge, "requests waiting for a batch slot (all replicas)"},
       {"kv_used", MetricSpec::Kind::gauge, "share of KV memory holding tokens now"}},
      {{"output_tokens", Unit::count, "output tokens generated"},
       {"tokens_per_second", Unit::per_second, "output tokens per second until the last answer"},
       {"ttft_mean", Unit::seconds, "mean time to first token"},
       {"ttft_p50", Unit::seconds,
        "median time to first token (arrival to the end of its prefill)"},
       {"ttft_p99", Unit::seconds, "99th percentile of the time to first token"},
       {"tpot_mean", Unit::seconds,
        "mean time per output token after the first: (answer - first token) / (output - 1)"},
       {"tpot_p99", Unit::seconds, "99th percentile of the time per output token"},
       {"mean_batch", Unit::number, "sequences per iteration, averaged over busy time"},
       {"kv_used", Unit::fraction, "share of KV memory holding tokens, over busy time"},
       {"kv_reserved", Unit::fraction, "share of KV memory allocated to sequences, over busy time"},
       {"fragmentation", Unit::fraction, "share of allocated KV memory holding no token"},
       {"kv_capacity_tokens", Unit::count, "KV tokens per replica for sequences"},
       {"memory_waits", Unit::count, "requests that waited because KV memory was full"},
       {"preemptions", Unit::count, "sequences preempted for memory and recomputed"},
       {"recomputed_tokens", Unit::count, "tokens prefilled again after a preemption"},
       {"prefill_tokens", Unit::count, "prompt tokens prefilled"},
       {"prefill_tokens_saved", Unit::count, "prompt tokens served from the prefix cache"},
       {"prefix_hit_rate", Unit::fraction, "share of requests with a prefix that found it cached"},
       {"replica_imbalance", Unit::number, "output tokens of the busiest replica / the mean"}},
      /*uses_service_time=*/false,
      // A network delay in front of a saturated accelerator changes nothing it measures (the
      // queue absorbs it), so the generic `latency` fault is not declared.
      {"errors", "blackhole"}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Batching> kinds[] = {
      {"static_batching", Batching::static_batches},
      {"continuous_batching", Batching::continuous},
      {"paged_kv", Batching::paged}};
  return std::make_unique<LlmServing>(variant_value(variant, kinds), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
