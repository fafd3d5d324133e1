// Semantic caching of LLM answers: reuse the answer of a similar earlier prompt.
//
//   problem:  exact_match -> cache[prompt text]: a paraphrase ("capital of France?" / "what is
//             France's capital?") never hits, so nearly every request pays the LLM.
//   semantic: embed the prompt; hit when the most similar cached prompt has cosine >= threshold.
//             Many more hits, but two DIFFERENT questions that happen to be near each other
//             ("capital of France?" / "capital of Spain?") hit too: a false hit serves the
//             answer of another question. The threshold trades hits for false hits.
//   fix:      semantic_length_aware -> a tighter threshold (short_threshold) for short prompts,
//             whose distinct questions differ by a word and sit closest together.
//   fix:      semantic_verified -> a candidate above the threshold goes through a verification
//             step (a cross-encoder / small judge model) that rejects most false matches, at a
//             cost per verification.
//
// Model: a request asks question key % questions, in one of `paraphrases` wordings drawn from
// (seed, request id), the same in every variant. Embeddings are real unit vectors (see
// PromptSpace in semantic.hpp): wordings of one question have cosine ~ paraphrase_similarity,
// sibling questions of a family ~ that times sibling_similarity_short / _long. The lookup
// compares with every cached entry (cost: comparisons x dim x ns_per_dimension), after the
// embedding (embed_time); a miss calls the LLM (the workload's service time) and caches the
// answer when it returns. Ground truth (the question of each entry) counts false hits.
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"
#include "semantic.hpp"

namespace {
using namespace hldlab;
using semantic::EntryInfo;

enum class Kind { exact_match, semantic, length_aware, verified };

struct Pending {
  Request request;
  std::uint64_t question = 0, paraphrase = 0;
  std::uint64_t served_question = 0;  // the question of the cache entry that answers a hit
  bool hit = false;
};

class SemanticCacheSystem final : public System {
 public:
  SemanticCacheSystem(Kind kind, const Params& p, Context& ctx)
      : kind_(kind),
        ctx_(ctx),
        questions_(p.integer<std::uint64_t>("questions")),
        paraphrases_(p.integer<std::uint64_t>("paraphrases")),
        capacity_(p.integer<std::size_t>("capacity")),
        threshold_(p.real("threshold")),
        short_threshold_(p.real("short_threshold")),
        false_accept_(p.real("verifier_false_accept")),
        false_reject_(p.real("verifier_false_reject")),
        ns_per_dimension_(p.real("ns_per_dimension")),
        llm_cost_(p.real("llm_cost")),
        embed_cost_(p.real("embed_cost")),
        verify_cost_(p.real("verify_cost")),
        embed_time_(p.duration("embed_time")),
        verify_time_(p.duration("verify_time")),
        lookup_time_(p.duration("lookup_time")),
        paraphrase_salt_(ctx.salt("paraphrase")),
        verifier_salt_(ctx.salt("verifier")),
        space_(p.integer<int>("dim"), p.integer<int>("family_size"),
               p.real("paraphrase_similarity"), p.real("sibling_similarity_short"),
               p.real("sibling_similarity_long"), p.real("short_share"), ctx.salt("embeddings")),
        cache_(space_.dim(), capacity_),
        query_(static_cast<std::size_t>(space_.dim())),
        hits_metric_(ctx.metric("hits")),
        false_hits_metric_(ctx.metric("false_hits")),
        llm_calls_metric_(ctx.metric("llm_calls")),
        saved_metric_(ctx.metric("cost_saved_dollars")),
        entries_metric_(ctx.metric("cache_entries")) {}

  void handle(const Request& r) override {
    const SlotHandle h = pending_.acquire();
    Pending& job = pending_[h];
    job = {};
    job.request = r;
    job.question = r.key % questions_;
    job.paraphrase = Rng::hash(r.id ^ paraphrase_salt_) % paraphrases_;
    ++requests_;
    if (space_.is_short(job.question)) ++short_requests_;
    Time delay = lookup_time_;
    if (kind_ == Kind::exact_match) {
      auto it = exact_.find(text_of(job));
      job.hit = it != exact_.end();
      if (job.hit) it->second = ++exact_clock_, job.served_question = job.question;
    } else {
      delay += lookup(job);
    }
    if (job.hit) {
      ctx_.after(delay, [this, h] { answer_from_cache(h); });
    } else {
      ++llm_calls_;
      llm_calls_metric_.add(1);
      ctx_.after(delay + r.service, [this, h] { answer_from_llm(h); });
    }
  }

  Map figures() const override {
    const double n = static_cast<double>(std::max<std::int64_t>(requests_, 1));
    const double hits = static_cast<double>(hits_);
    const double saved = hits * llm_cost_;
    const double embeddings = static_cast<double>(embeddings_) * embed_cost_;
    const double verifications = static_cast<double>(verifications_) * verify_cost_;
    return {{"hit_rate", hits / n},
            {"false_hits", false_hits_},
            {"false_hit_rate", hits_ > 0 ? static_cast<double>(false_hits_) / hits : 0.0},
            {"wrong_answers", static_cast<double>(false_hits_) / n},
            {"correct_hit_rate", (hits - static_cast<double>(false_hits_)) / n},
            {"short_false_hits", short_false_hits_},
            {"short_requests", short_requests_},
            {"llm_calls", llm_calls_},
            {"verifications", verifications_},
            {"comparisons_per_lookup",
             embeddings_ > 0 ? static_cast<double>(comparisons_) / static_cast<double>(embeddings_)
                             : 0.0},
            {"cache_entries", static_cast<std::int64_t>(entries())},
            {"cache_bytes",
             kind_ == Kind::exact_match ? static_cast<double>(entries()) * 40 : cache_.bytes()},
            {"llm_cost_saved", saved},
            {"embedding_cost", embeddings},
            {"verification_cost", verifications},
            {"net_saving", saved - embeddings - verifications}};
  }

  void reset_stats() override {
    requests_ = short_requests_ = hits_ = false_hits_ = short_false_hits_ = 0;
    llm_calls_ = verifications_ = embeddings_ = 0;
    comparisons_ = 0;
  }

 private:
  /// The exact cache's key: the prompt text, i.e. (question, wording).
  std::uint64_t text_of(const Pending& job) const {
    return job.question * paraphrases_ + job.paraphrase;
  }
  std::size_t entries() const { return kind_ == Kind::exact_match ? exact_.size() : cache_.size(); }

  /// Embed, find the most similar entry, decide; returns the time it took.
  Time lookup(Pending& job) {
    space_.embed(job.question, job.paraphrase, query_.data());
    ++embeddings_;
    const std::uint64_t before = cache_.comparisons();
    const semantic::SemanticCache::Match m = cache_.nearest(query_.data());
    const std::uint64_t compared = cache_.comparisons() - before;
    comparisons_ += compared;
    Time t =
        embed_time_ + round_time(static_cast<double>(compared) * space_.dim() * ns_per_dimension_);
    const bool is_short = space_.is_short(job.question);
    const double threshold =
        kind_ == Kind::length_aware && is_short ? short_threshold_ : threshold_;
    job.hit = m.index >= 0 && m.similarity >= threshold;
    if (job.hit && kind_ == Kind::verified) {
      ++verifications_;
      t += verify_time_;
      const bool same = cache_.info(m.index).question == job.question;
      const double u = Rng::uniform_at(verifier_salt_, job.request.id, 1);
      job.hit = same ? u >= false_reject_ : u < false_accept_;
    }
    if (job.hit) {
      job.served_question = cache_.info(m.index).question;
      cache_.touch(m.index);
    }
    return t;
  }

  void answer_from_cache(SlotHandle h) {
    Pending& job = pending_[h];
    ++hits_;
    hits_metric_.add(1);
    if (kind_ != Kind::exact_match && job.served_question != job.question) {
      ++false_hits_;
      false_hits_metric_.add(1);
      if (space_.is_short(job.question)) ++short_false_hits_;
    }
    saved_metric_.add(llm_cost_);
    const Request r = job.request;
    pending_.release(h);
    ctx_.complete(r, Outcome::hit);
  }

  void answer_from_llm(SlotHandle h) {
    const Pending& job = pending_[h];
    if (kind_ == Kind::exact_match) {
      store_exact(text_of(job));
    } else {
      space_.embed(job.question, job.paraphrase, query_.data());
      cache_.insert(query_.data(), EntryInfo{job.question, job.paraphrase});
    }
    entries_metric_.set(static_cast<double>(entries()));
    const Request r = job.request;
    pending_.release(h);
    ctx_.complete(r, Outcome::miss);
  }

  void store_exact(std::uint64_t text) {
    if (exact_.count(text) == 0 && exact_.size() >= capacity_) {
      auto oldest = exact_.begin();
      for (auto it = exact_.begin(); it != exact_.end(); ++it)
        if (it->second < oldest->second) oldest = it;
      exact_.erase(oldest);
    }
    exact_[text] = ++exact_clock_;
  }

  Kind kind_;
  Context& ctx_;
  std::uint64_t questions_, paraphrases_;
  std::size_t capacity_;
  double threshold_, short_threshold_, false_accept_, false_reject_, ns_per_dimension_;
  double llm_cost_, embed_cost_, verify_cost_;
  Time embed_time_, verify_time_, lookup_time_;
  std::uint64_t paraphrase_salt_, verifier_salt_;
  semantic::PromptSpace space_;
  semantic::SemanticCache cache_;
  std::unordered_map<std::uint64_t, std::uint64_t> exact_;  // text -> last use
  std::uint64_t exact_clock_ = 0;
  std::vector<float> query_;
  SlotPool<Pending> pending_;
  Metric &hits_metric_, &false_hits_metric_, &llm_calls_metric_, &saved_metric_, &entries_metric_;
  std::int64_t requests_ = 0, short_requests_ = 0, hits_ = 0, false_hits_ = 0,
               short_false_hits_ = 0;
  std::int64_t llm_calls_ = 0, verifications_ = 0, embeddings_ = 0;
  std::uint64_t comparisons_ = 0;
};

LessonInfo info() {
  return {
      "semantic_cache",
      "Semantic cache: exact-match cache -> embedding similarity with a threshold (and false hits)",
      "An exact-match cache of LLM answers hits only identical prompts: users word the same "
      "question in many ways, so almost every request pays for an LLM call. A semantic cache "
      "hits when a cached prompt's embedding is similar enough, but distinct questions that "
      "happen to be close ('capital of France?' / 'capital of Spain?') then get each other's "
      "answer: a false hit is a wrong answer served with confidence.",
      "Cache on embeddings with a threshold chosen from the hit/false-hit curve; tighten it for "
      "short prompts (distinct short questions differ by one word and embed closest), or verify "
      "each candidate with a more accurate model (a cross-encoder) before serving it.",
      {"GPTCache (Zilliz)", "Redis semantic cache (RedisVL SemanticCache)",
       "LangChain / LlamaIndex semantic caches", "Portkey, Helicone, Cloudflare AI Gateway caching",
       "Bang, \"GPTCache: an open-source semantic cache for LLM applications\" (NLP-OSS 2023)"},
      {{"exact_match", true, "hash of the prompt text: only identical prompts hit"},
       {"semantic", true,
        "cosine of the nearest cached prompt >= threshold: hits paraphrases and neighbours"},
       {"semantic_length_aware", false,
        "short prompts need short_threshold (tighter), others threshold"},
       {"semantic_verified", false,
        "a candidate above the threshold is verified before it is served"}},
      {{"questions", ParamType::integer, 1000, "distinct questions (question = key % questions)", 1,
        1e9},
       {"family_size", ParamType::integer, 4, "questions per family of near questions", 1, 1e6},
       {"paraphrases", ParamType::integer, 32, "wordings per question, uniform per request", 1,
        1e6},
       {"dim", ParamType::integer, 64, "embedding dimensions", 2, 4096},
       {"paraphrase_similarity", ParamType::real, 0.9,
        "cosine between two wordings of one question (tau)", 0, 1},
       {"sibling_similarity_short", ParamType::real, 0.92,
        "cosine between two short questions of a family (rho): they differ by a word", 0, 1},
       {"sibling_similarity_long", ParamType::real, 0.6,
        "cosine between two long questions of a family", 0, 1},
       {"short_share", ParamType::real, 0.3, "share of questions that are short prompts", 0, 1},
       {"capacity", ParamType::integer, 5000, "cached prompts (LRU beyond)", 1, 1e7},
       {"threshold", ParamType::real, 0.8, "cosine needed for a hit", -1, 1},
       {"short_threshold", ParamType::real, 0.9,
        "semantic_length_aware: cosine needed for a hit on a short prompt", -1, 1},
       {"verifier_false_accept", ParamType::real, 0.02,
        "semantic_verified: chance the verifier accepts a different question", 0, 1},
       {"verifier_false_reject", ParamType::real, 0.02,
        "semantic_verified: chance the verifier rejects the same question", 0, 1},
       {"embed_time", ParamType::duration, "5ms", "cost model: embedding a prompt", 0, 60},
       {"ns_per_dimension", ParamType::real, 0.5,
        "cost model: nanoseconds per dimension of one similarity comparison", 0, 1e6},
       {"verify_time", ParamType::duration, "30ms", "cost model: one verification", 0, 60},
       {"lookup_time", ParamType::duration, "1ms", "cost model: the cache round trip", 0, 60},
       {"llm_cost", ParamType::real, 0.01, "dollars per LLM call", 0, 1e6},
       {"embed_cost", ParamType::real, 0.00002, "dollars per embedding", 0, 1e6},
       {"verify_cost", ParamType::real, 0.0005, "dollars per verification", 0, 1e6}},
      {},
      {},
      {{"hits", MetricSpec::Kind::counter, "requests answered from the cache"},
       {"false_hits", MetricSpec::Kind::counter, "cache answers that belonged to another question"},
       {"llm_calls", MetricSpec::Kind::counter, "requests sent to the LLM"},
       {"cost_saved_dollars", MetricSpec::Kind::counter, "LLM dollars not spent thanks to hits"},
       {"cache_entries", MetricSpec::Kind::gauge, "prompts in the cache"}},
      {{"hit_rate", Unit::fraction, "share of requests answered from the cache"},
       {"false_hits", Unit::count, "cache answers that belonged to another question"},
       {"false_hit_rate", Unit::fraction,
        "share of cache answers that belonged to another question"},
       {"wrong_answers", Unit::fraction,
        "share of all requests answered with another question's answer"},
       {"correct_hit_rate", Unit::fraction, "share of requests answered correctly from the cache"},
       {"short_false_hits", Unit::count, "false hits on short prompts"},
       {"short_requests", Unit::count, "requests with a short prompt"},
       {"llm_calls", Unit::count, "requests sent to the LLM"},
       {"verifications", Unit::count, "candidates verified (semantic_verified)"},
       {"comparisons_per_lookup", Unit::number, "similarity comparisons per lookup (cache size)"},
       {"cache_entries", Unit::count, "prompts in the cache at the end"},
       {"cache_bytes", Unit::bytes, "memory of the cached keys (vectors: 4 bytes a dimension)"},
       {"llm_cost_saved", Unit::number, "dollars of LLM calls saved by hits"},
       {"embedding_cost", Unit::number, "dollars spent on embeddings"},
       {"verification_cost", Unit::number, "dollars spent on verifications"},
       {"net_saving", Unit::number, "saved minus embedding and verification dollars"}},
      /*uses_service_time=*/true};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Kind> kinds[] = {
      {"exact_match", Kind::exact_match},
      {"semantic", Kind::semantic},
      {"semantic_length_aware", Kind::length_aware},
      {"semantic_verified", Kind::verified}};
  return std::make_unique<SemanticCacheSystem>(variant_value(variant, kinds), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
