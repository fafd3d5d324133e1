#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"
#include "semantic.hpp"

using namespace hldlab;
using namespace hldlab::testing;
using semantic::cosine;

namespace {

const double kPi = std::acos(-1.0);

/// The unit vector of the plane at `degrees`.
std::vector<float> at_angle(double degrees) {
  const double a = degrees * kPi / 180;
  return {static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a))};
}

/// Mean and standard deviation of the cosines of `pairs` pairs drawn by `draw(i, a, b)`.
template <class Draw>
std::pair<double, double> cosine_stats(semantic::PromptSpace& space, int pairs, Draw draw) {
  std::vector<float> a(static_cast<std::size_t>(space.dim())), b(a.size());
  double sum = 0, squares = 0;
  for (int i = 0; i < pairs; ++i) {
    draw(static_cast<std::uint64_t>(i), a.data(), b.data());
    const double c = cosine(a.data(), b.data(), space.dim());
    sum += c;
    squares += c * c;
  }
  const double mean = sum / pairs;
  return {mean, std::sqrt(squares / pairs - mean * mean)};
}

}  // namespace

TEST_CASE("cosine similarity of vectors at known angles") {
  const auto x = at_angle(0), a30 = at_angle(30), a60 = at_angle(60), a90 = at_angle(90),
             a180 = at_angle(180);
  CHECK(cosine(x.data(), x.data(), 2) == Approx(1));
  CHECK(cosine(x.data(), a30.data(), 2) == Approx(std::sqrt(3.0) / 2));
  CHECK(cosine(x.data(), a60.data(), 2) == Approx(0.5));
  CHECK(cosine(x.data(), a90.data(), 2) == Approx(0).margin(1e-7));
  CHECK(cosine(x.data(), a180.data(), 2) == Approx(-1));
  const std::vector<float> longer{3, 0};  // the length does not matter
  CHECK(cosine(longer.data(), a60.data(), 2) == Approx(0.5));
}

TEST_CASE("the cache returns the entry at the smallest angle and counts its comparisons") {
  semantic::SemanticCache cache(2, 3);
  cache.insert(at_angle(0).data(), {0, 0});
  cache.insert(at_angle(50).data(), {1, 0});
  cache.insert(at_angle(100).data(), {2, 0});
  const auto m = cache.nearest(at_angle(35).data());  // 15 degrees from entry 1, 35 from entry 0
  CHECK(m.index == 1);
  CHECK(m.similarity == Approx(std::cos(15 * kPi / 180)));
  CHECK(cache.comparisons() == 3);
  // At threshold cos(10 deg) = 0.985 this is a miss, at cos(20 deg) = 0.940 a hit.
  CHECK(m.similarity < std::cos(10 * kPi / 180));
  CHECK(m.similarity >= std::cos(20 * kPi / 180));
  // Full: entry 0 was used least recently once 1 and 2 are touched; a new entry replaces it.
  cache.touch(1);
  cache.touch(2);
  cache.insert(at_angle(200).data(), {3, 0});
  CHECK(cache.size() == 3);
  CHECK(cache.evictions() == 1);
  CHECK(cache.info(0).question == 3);
  CHECK(cache.nearest(at_angle(2).data()).index == 1);  // 0 deg is gone: 50 deg is nearest
}

TEST_CASE("embeddings have the stated similarities (theory, 2000 pairs each)") {
  // tau = 0.9 between wordings of one question (+- (1 - tau) / sqrt(dim)), tau x rho between
  // wordings of sibling questions (0.828 short, 0.54 long), 0 +- 1/sqrt(dim) between
  // unrelated questions.
  semantic::PromptSpace space(64, 4, 0.9, 0.92, 0.6, 0.5, 12345);
  std::vector<float> again(64);
  std::vector<float> once(64);
  space.embed(7, 3, once.data());
  space.embed(7, 3, again.data());
  CHECK(cosine(once.data(), again.data(), 64) == Approx(1));  // one wording, one vector

  // Questions 4f..4f+3 form family f, short or long as a whole.
  auto same_question = cosine_stats(space, 2000, [&](std::uint64_t i, float* a, float* b) {
    space.embed(i, 0, a);
    space.embed(i, 1, b);
  });
  CHECK(same_question.first == Approx(0.9).margin(0.01));
  CHECK(same_question.second == Approx(0.1 / std::sqrt(63.0)).margin(0.004));
  auto unrelated = cosine_stats(space, 2000, [&](std::uint64_t i, float* a, float* b) {
    space.embed(8 * i, 0, a);
    space.embed(8 * i + 4, 0, b);  // another family
  });
  CHECK(std::abs(unrelated.first) < 5 * 0.125 / std::sqrt(2000.0));
  CHECK(unrelated.second == Approx(0.125).margin(0.015));
  double short_sum = 0, long_sum = 0;
  int shorts = 0, longs = 0;
  std::vector<float> a(64), b(64);
  for (std::uint64_t f = 0; f < 4000; ++f) {
    const std::uint64_t q = 4 * f;
    REQUIRE(space.is_short(q) == space.is_short(q + 1));
    space.embed(q, 0, a.data());
    space.embed(q + 1, 1, b.data());
    (space.is_short(q) ? short_sum : long_sum) += cosine(a.data(), b.data(), 64);
    ++(space.is_short(q) ? shorts : longs);
  }
  REQUIRE(shorts > 500);
  REQUIRE(longs > 500);
  // Two questions of a family have cosine exactly rho (rho_short or rho_long); their wordings
  // tau x rho on average.
  CHECK(short_sum / shorts == Approx(0.9 * 0.92).margin(0.01));
  CHECK(long_sum / longs == Approx(0.9 * 0.6).margin(0.015));
}

TEST_CASE("one question in one wording: the first request misses, every later one hits") {
  // Requests 1 s apart, the LLM answers in 1 ms: each answer is cached before the next asks.
  const Map one{{"questions", 1}, {"paraphrases", 1}};
  const auto r = run_experiment(constant_workload(1, milliseconds(1)), seconds(20.5),
                                {{"semantic_cache", "exact_match", one},
                                 {"semantic_cache", "semantic", one},
                                 {"semantic_cache", "semantic_verified", one}});
  for (const char* v : {"exact_match", "semantic", "semantic_verified"}) {
    INFO(v);
    CHECK(row(r, v).requests == 20);
    CHECK(row(r, v).count(Outcome::hit) == 19);
    CHECK(figure(r, v, "llm_calls") == 1);
    CHECK(figure(r, v, "false_hits") == 0);
    CHECK(figure(r, v, "llm_cost_saved") == Approx(19 * 0.01));
  }
  // Every semantic lookup embeds (20 x $0.00002); verification checks the 19 candidates.
  CHECK(figure(r, "semantic", "embedding_cost") == Approx(20 * 0.00002));
  CHECK(figure(r, "semantic_verified", "verifications") == 19);
  CHECK(figure(r, "semantic_verified", "net_saving") ==
        Approx(19 * 0.01 - 20 * 0.00002 - 19 * 0.0005));
  CHECK(figure(r, "exact_match", "embedding_cost") == 0);
}

TEST_CASE("wordings of one question hit the semantic cache, never the exact one") {
  // One question, 50 wordings at cosine ~0.99 (tau = 0.99): exact match misses every new
  // wording; the semantic cache hits them all after the first request.
  const Map p{{"questions", 1}, {"paraphrases", 50}, {"paraphrase_similarity", 0.99}};
  const auto r =
      run_experiment(constant_workload(1, milliseconds(1)), seconds(40.5),
                     {{"semantic_cache", "exact_match", p}, {"semantic_cache", "semantic", p}});
  CHECK(row(r, "semantic").count(Outcome::hit) == 39);
  CHECK(figure(r, "semantic", "cache_entries") == 1);
  // Exact match: a hit only for a wording seen before; each miss caches one wording.
  CHECK(row(r, "exact_match").count(Outcome::hit) ==
        40 - figure(r, "exact_match", "cache_entries"));
  CHECK(figure(r, "exact_match", "cache_entries") > 20);
}

TEST_CASE("two near-identical short questions: semantic serves false hits, the fixes do not") {
  // Two sibling questions (one family), one wording each, cosine tau x rho = 0.99 between them
  // (tau = 1, rho = 0.99), both short. The first request misses; afterwards:
  //  - semantic (threshold 0.8) hits every request, with the answer of whichever question came
  //    first: every request of the other question is a false hit;
  //  - semantic_length_aware (short_threshold 0.995) only hits the question itself: 2 misses;
  //  - semantic_verified (a perfect verifier) rejects the sibling's entry once, then the
  //    question's own entry is the nearest: 2 misses, no false hit, 19 verifications.
  const Map p{{"questions", 2},
              {"family_size", 2},
              {"paraphrases", 1},
              {"paraphrase_similarity", 1.0},
              {"sibling_similarity_short", 0.99},
              {"short_share", 1.0},
              {"short_threshold", 0.995},
              {"verifier_false_accept", 0.0},
              {"verifier_false_reject", 0.0}};
  Workload w = constant_workload(1, milliseconds(1), 2);
  const auto r = run_experiment(w, seconds(20.5),
                                {{"semantic_cache", "exact_match", p},
                                 {"semantic_cache", "semantic", p},
                                 {"semantic_cache", "semantic_length_aware", p},
                                 {"semantic_cache", "semantic_verified", p}});
  const double exact_hits = static_cast<double>(row(r, "exact_match").count(Outcome::hit));
  REQUIRE(exact_hits == 18);  // both questions were asked (with 20 uniform draws of 2 keys)
  CHECK(row(r, "semantic").count(Outcome::hit) == 19);
  CHECK(figure(r, "semantic", "false_hits") > 0);
  CHECK(figure(r, "semantic", "short_false_hits") == figure(r, "semantic", "false_hits"));
  CHECK(figure(r, "semantic", "cache_entries") == 1);
  CHECK(row(r, "semantic_length_aware").count(Outcome::hit) == 18);
  CHECK(figure(r, "semantic_length_aware", "false_hits") == 0);
  CHECK(row(r, "semantic_verified").count(Outcome::hit) == 18);
  CHECK(figure(r, "semantic_verified", "false_hits") == 0);
  CHECK(figure(r, "semantic_verified", "verifications") == 19);
}

TEST_CASE("a higher threshold gives fewer hits and fewer false hits (5 seeds)") {
  Workload w = constant_workload(100, seconds(1), 1000);
  w.keys = KeyDistribution::zipf(1000, 1.0);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    INFO("seed " << seed);
    const auto r = run_experiment(w, seconds(10),
                                  {{"semantic_cache", "semantic", {{"threshold", 0.7}}, "t70"},
                                   {"semantic_cache", "semantic", {{"threshold", 0.85}}, "t85"},
                                   {"semantic_cache", "semantic", {{"threshold", 0.99}}, "t99"},
                                   {"semantic_cache", "exact_match", {}, "exact"}},
                                  seed);
    CHECK(figure(r, "t70", "hit_rate") > figure(r, "t85", "hit_rate"));
    CHECK(figure(r, "t85", "hit_rate") > figure(r, "t99", "hit_rate"));
    CHECK(figure(r, "t70", "false_hit_rate") > figure(r, "t85", "false_hit_rate"));
    CHECK(figure(r, "t99", "false_hits") == 0);
    // At 0.99 only the same wording is similar enough: the exact cache's hits.
    CHECK(figure(r, "t99", "hit_rate") == figure(r, "exact", "hit_rate"));
  }
}
