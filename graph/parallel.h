// TBB's parallel_for with the happens-before edges ThreadSanitizer needs to check the code around it.
//
// Debian's libtbb is not built with ThreadSanitizer: the synchronization by which TBB hands a piece of work
// to a worker, and by which the caller learns that every piece is done, happens out of TSan's sight. Every
// value written before a parallel loop and read in it, or written in it and read after it, would then be
// reported as a race. These functions draw those edges explicitly: the caller releases before the loop,
// each piece acquires before it runs and releases after, the caller acquires after the loop. So a TSan
// build reports the races between pieces, and the races of code outside the loops. The edges go through one
// process-wide token, whose address a piece can use before reading anything its caller wrote (its lambda's
// captures included). Outside TSan builds they are empty and free.
#pragma once

#include <tbb/parallel_for.h>

#include <utility>

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace flowgrad {

#if defined(__SANITIZE_THREAD__)
inline char tsan_handoff_token;
inline void tsan_handoff_release() { __tsan_release(&tsan_handoff_token); }
inline void tsan_handoff_acquire() { __tsan_acquire(&tsan_handoff_token); }
#else
inline void tsan_handoff_release() {}
inline void tsan_handoff_acquire() {}
#endif

// tbb::parallel_for(range, body, partitioner) with the hand-offs drawn.
template <class Range, class Body, class... Partitioner>
void parallel_for(const Range& range, const Body& body, Partitioner&&... partitioner) {
  auto piece = [&](const Range& part) {
    tsan_handoff_acquire();
    body(part);
    tsan_handoff_release();
  };
  tsan_handoff_release();
  tbb::parallel_for(range, piece, std::forward<Partitioner>(partitioner)...);
  tsan_handoff_acquire();
}

// tbb::parallel_for(begin, end, body) over indices, with the hand-offs drawn.
template <class Index, class Body>
void parallel_for_each_index(Index begin, Index end, const Body& body) {
  auto piece = [&](Index i) {
    tsan_handoff_acquire();
    body(i);
    tsan_handoff_release();
  };
  tsan_handoff_release();
  tbb::parallel_for(begin, end, piece);
  tsan_handoff_acquire();
}

}  // namespace flowgrad
