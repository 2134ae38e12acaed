// Per-op time counters (off by default; `bench_models --profile` turns them on): where a forward or a training
// step spends its time, by op kind. RF_PROFILE("kind") times the rest of the enclosing block (a scope inside
// another one on the same thread counts toward the outer one only). Inside an OpenMP
// team (the sample-blocked eval) a scope adds its time divided by the team size, so that the kinds add up to
// about the wall time of the code they cover. Off: one relaxed atomic load per scope. Checked by
// tests/core/test_profile.cpp.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rf::profile {

void set_enabled(bool on);
bool enabled();
void reset();
// (kind, seconds, calls) for every kind that ran since reset(), in the order the kinds were first seen.
struct Row {
  std::string kind;
  double seconds = 0;
  int64_t calls = 0;
};
std::vector<Row> snapshot();

int kind_id(const char* kind);  // registers a kind once (at most 64)
void add(int id, double seconds);

class Scope {
 public:
  explicit Scope(int id) : id_(enabled() && depth() == 0 ? id : -1) {
    if (id_ >= 0) {
      depth() = 1;
      t0_ = std::chrono::steady_clock::now();
    }
  }
  ~Scope() {
    if (id_ >= 0) {
      add(id_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
      depth() = 0;
    }
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  static bool inside() { return depth() != 0; }  // this thread is inside a counting scope

 private:
  friend class TeamMember;
  static int& depth() {  // 1 while this thread is inside a counting scope
    thread_local int d = 0;
    return d;
  }
  int id_;
  std::chrono::steady_clock::time_point t0_;
};

// Held by each thread of a team that a thread started inside a counting scope (Scope::inside() there): the
// scopes of the ops the team runs then count toward that outer scope alone, as they do on the starting thread.
class TeamMember {
 public:
  explicit TeamMember(bool covered) : saved_(Scope::depth()) {
    if (covered) Scope::depth() = 1;
  }
  ~TeamMember() { Scope::depth() = saved_; }
  TeamMember(const TeamMember&) = delete;
  TeamMember& operator=(const TeamMember&) = delete;

 private:
  int saved_;
};

}  // namespace rf::profile

#define RF_PROFILE_CAT2(a, b) a##b
#define RF_PROFILE_CAT(a, b) RF_PROFILE_CAT2(a, b)
#define RF_PROFILE(kind)                                                    \
  static const int RF_PROFILE_CAT(rf_prof_id_, __LINE__) = ::rf::profile::kind_id(kind); \
  ::rf::profile::Scope RF_PROFILE_CAT(rf_prof_scope_, __LINE__)(RF_PROFILE_CAT(rf_prof_id_, __LINE__))
