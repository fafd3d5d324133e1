/// @file cost_model.hpp
/// @brief CostModel: the virtual time an operation on an in-memory data structure takes, from the
/// work it did (hashes, random memory accesses, comparisons) at a cost in nanoseconds of each.
/// The work record is the lesson's own: any type with the counts `hashes`, `accesses` and
/// `compares`.
///
/// @code
///   struct Work { std::uint64_t hashes = 0, accesses = 0, compares = 0; };
///   const CostModel cost{p.real("hash_ns"), p.real("access_ns"), p.real("compare_ns")};
///   cpu_.submit(job, cost.time(work));
/// @endcode
#pragma once

#include "hldlab/sim.hpp"

namespace hldlab {

struct CostModel {
  double hash_ns, access_ns, compare_ns;

  template <class Work>
  Time time(const Work& w) const {
    return round_time(static_cast<double>(w.hashes) * hash_ns +
                      static_cast<double>(w.accesses) * access_ns +
                      static_cast<double>(w.compares) * compare_ns);
  }
};

}  // namespace hldlab
