// The CUDA emulation's runtime (see cuda/emu/cuda_emu.h for what is emulated and what is not): the block
// scheduler (one fiber per thread, barriers, the seeded run order between barriers, per-block shared buffers)
// and the runtime API on host memory. Checked by tests/gpu/emu/test_cuda_emu.cpp.
// Fibers switch with a few instructions of assembly on x86-64 (callee-saved registers, the FP control words,
// the stack pointer): glibc's swapcontext also saves the signal mask, a system call per switch, and made up
// ~70 % of the emulated seeded-conv test's time (perf). Elsewhere ucontext does it.
#include "cuda/emu/cuda_emu.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define RF_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RF_EMU_ASAN 1
#endif
#endif
#if defined(RF_EMU_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace rf_emu {
namespace {

thread_local cudaError_t g_last_error = cudaSuccess;

void set_error(cudaError_t e, const std::string& why) {
  std::fprintf(stderr, "cuda emu: %s\n", why.c_str());
  if (g_last_error == cudaSuccess) g_last_error = e;
}

// ---- configuration from the environment ------------------------------------------------------------------

uint64_t order_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("RF_EMU_SEED");
    const uint64_t s = env && *env ? std::strtoull(env, nullptr, 0) : 1;
    std::fprintf(stderr, "cuda emu: threads of a block run in a random order between barriers, seed %llu "
                 "(RF_EMU_SEED)\n", static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

struct DropBarrier {
  std::string file;  // base name, e.g. pool.cu
  int line = -1;
  bool announced = false;
};
DropBarrier& drop_barrier() {
  static DropBarrier d = [] {
    DropBarrier r;
    const char* env = std::getenv("RF_EMU_DROP_BARRIER");
    if (!env || !*env) return r;
    const std::string s = env;
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon + 1 == s.size()) {
      std::fprintf(stderr, "cuda emu: RF_EMU_DROP_BARRIER=%s, expected <file>:<line> (e.g. pool.cu:120)\n", env);
      std::abort();
    }
    r.file = s.substr(0, colon);
    r.line = std::atoi(s.c_str() + colon + 1);
    return r;
  }();
  return d;
}

bool is_dropped(const char* file, int line) {
  DropBarrier& d = drop_barrier();
  if (d.line != line || d.file.empty()) return false;
  const std::string f = file;
  const bool match = f == d.file || (f.size() > d.file.size() && f.compare(f.size() - d.file.size(), d.file.size(),
                                                                           d.file) == 0 &&
                                     f[f.size() - d.file.size() - 1] == '/');
  if (match && !d.announced) {
    d.announced = true;
    std::fprintf(stderr, "cuda emu: RF_EMU_DROP_BARRIER: the __syncthreads() at %s:%d is dropped (a no-op)\n", file,
                 line);
  }
  return match;
}

// ---- fiber stacks: mmap'ed, a guard page below each, reused across blocks and launches ----------------------

#if defined(RF_EMU_ASAN)
constexpr size_t kStackBytes = 512 * 1024;  // ASan's redzones make frames several times larger
#else
constexpr size_t kStackBytes = 128 * 1024;
#endif

struct Stack {
  char* map = nullptr;  // guard page + usable stack
  size_t map_bytes = 0;
  char* base() const { return map + page(); }
  size_t size() const { return map_bytes - page(); }
  static size_t page() { return size_t(sysconf(_SC_PAGESIZE)); }
};

class StackPool {
 public:
  ~StackPool() {
    for (Stack& s : stacks_) munmap(s.map, s.map_bytes);
  }
  // Stack i (stacks up to i allocated on first use); nullptr when the system refuses. The pointer stays valid
  // until a get() with a larger i.
  const Stack* get(size_t i) {
    while (stacks_.size() <= i) {
      Stack s;
      s.map_bytes = kStackBytes + Stack::page();
      void* p = mmap(nullptr, s.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      s.map = static_cast<char*>(p);
      mprotect(s.map, Stack::page(), PROT_NONE);  // an overflow faults instead of corrupting the next stack
      stacks_.push_back(s);
    }
    return &stacks_[i];
  }

 private:
  std::vector<Stack> stacks_;
};

// ---- contexts: make one on a stack, switch between two ---------------------------------------------------

#if defined(__x86_64__) && !defined(RF_EMU_UCONTEXT)  // RF_EMU_UCONTEXT: the portable path, for testing it here
// rf_emu_switch(&save_sp, load_sp): pushes the callee-saved registers and the x87 / SSE control words, saves
// the stack pointer, loads the other context's and pops its registers (System V x86-64 ABI).
extern "C" void rf_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl rf_emu_switch
  .type rf_emu_switch, @function
rf_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  fnstcw (%rsp)
  stmxcsr 8(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rf_emu_switch, .-rf_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

struct Context {
  void* sp = nullptr;
};

// A frame that rf_emu_switch pops into entry(), entered as if called (rsp = 8 mod 16) with a null return address.
void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
  auto* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack + size)) & ~uintptr_t(15));
  uint64_t* sp = top - 10;
  uint16_t fpu_cw;
  uint32_t mxcsr;
  asm volatile("fnstcw %0" : "=m"(fpu_cw));
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  sp[0] = fpu_cw;
  sp[1] = mxcsr;
  for (int r = 2; r < 8; ++r) sp[r] = 0;  // r15 r14 r13 r12 rbx rbp
  sp[8] = reinterpret_cast<uint64_t>(entry);
  sp[9] = 0;
  c.sp = sp;
}
inline void context_switch(Context& from, Context& to) { rf_emu_switch(&from.sp, to.sp); }

#else  // portable: ucontext

struct Context {
  ucontext_t uc;
};
// Its own function: getcontext "returns twice" like setjmp, which would put a caller's locals at risk.
__attribute__((noinline)) void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
// getcontext + setcontext rather than swapcontext: ASan intercepts swapcontext only to print a warning (which
// scripts/sanitize.sh would count as a report), and the switch is annotated below anyway.
__attribute__((noinline)) void context_switch(Context& from, Context& to) {
  volatile bool resumed = false;
  getcontext(&from.uc);  // returns a second time when something switches back to `from`
  if (resumed) return;
  resumed = true;
  setcontext(&to.uc);
}
#endif

// ---- blocks -----------------------------------------------------------------------------------------------

enum class State { kRunnable, kAtBarrier, kDone };

struct Fiber {
  Context ctx;
  ThreadCoords coords;
  State state = State::kRunnable;
  const Stack* stack = nullptr;
  void* asan_fake_stack = nullptr;
  const char* barrier_file = nullptr;  // where it waits
  int barrier_line = 0;
};

struct Block {
  std::vector<Fiber> fibers;
  Context scheduler;
  Fiber* running = nullptr;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  void* dynamic_smem = nullptr;
  std::vector<std::pair<const void*, void*>> static_smem;  // (declaration tag, buffer)
  void* asan_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
};

thread_local Block* g_block = nullptr;  // the block being run by this host thread

// AddressSanitizer must be told about every stack switch (else it reports false positives on fiber stacks).
inline void start_switch(void** fake_stack_save, const void* bottom, size_t size) {
#if defined(RF_EMU_ASAN)
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
  (void)fake_stack_save, (void)bottom, (void)size;
#endif
}
inline void finish_switch(void* fake_stack, const void** bottom_old, size_t* size_old) {
#if defined(RF_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
#else
  (void)fake_stack, (void)bottom_old, (void)size_old;
#endif
}

void fiber_main() {
  Block* b = g_block;
  Fiber* f = b->running;
  finish_switch(nullptr, &b->scheduler_stack_bottom, &b->scheduler_stack_size);
  b->body(b->arg);
  f->state = State::kDone;
  start_switch(nullptr, b->scheduler_stack_bottom, b->scheduler_stack_size);  // this fiber's frames are over
  context_switch(f->ctx, b->scheduler);  // never resumed
  std::abort();
}

void switch_to(Block& b, Fiber& f) {
  b.running = &f;
  tls_coords = &f.coords;
  start_switch(&b.asan_fake_stack, f.stack->base(), f.stack->size());
  context_switch(b.scheduler, f.ctx);
  finish_switch(b.asan_fake_stack, nullptr, nullptr);
  tls_coords = nullptr;
  b.running = nullptr;
}

void make_fiber_context(Fiber& f) { context_make(f.ctx, f.stack->base(), f.stack->size(), fiber_main); }

std::string coord_str(const uint3& u) {
  return "(" + std::to_string(u.x) + "," + std::to_string(u.y) + "," + std::to_string(u.z) + ")";
}

// Runs one block to its end; false (after reporting) on a divergent barrier.
bool run_block(Block& b, StackPool& stacks, std::mt19937_64& rng, size_t dynamic_smem) {
  const size_t n = b.fibers.size();
  b.dynamic_smem = std::malloc(dynamic_smem);  // exactly the launched size (ASan: any byte beyond is reported)
  if (dynamic_smem) std::memset(b.dynamic_smem, 0xFF, dynamic_smem);
  b.static_smem.clear();
  std::vector<uint32_t> order(n);
  if (!stacks.get(n - 1)) {  // all n first: growing the pool moves the stacks' records
    set_error(cudaErrorMemoryAllocation, "cannot map a fiber stack");
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.state = State::kRunnable;
    f.stack = stacks.get(i);
    make_fiber_context(f);
    order[i] = uint32_t(i);
  }
  bool ok = true;
  for (;;) {
    std::shuffle(order.begin(), order.end(), rng);
    for (uint32_t i : order)
      if (b.fibers[i].state == State::kRunnable) switch_to(b, b.fibers[i]);
    size_t done = 0, waiting = 0;
    const Fiber* a_waiter = nullptr;
    const Fiber* a_finisher = nullptr;
    for (const Fiber& f : b.fibers) {
      if (f.state == State::kDone) ++done, a_finisher = &f;
      else if (f.state == State::kAtBarrier) ++waiting, a_waiter = &f;
    }
    if (waiting == 0) break;  // every thread ended
    if (done > 0) {
      set_error(cudaErrorLaunchFailure,
                "divergent __syncthreads() in block " + coord_str(a_waiter->coords.block_idx) + ": " +
                    std::to_string(waiting) + " threads wait at " + a_waiter->barrier_file + ":" +
                    std::to_string(a_waiter->barrier_line) + " (e.g. thread " +
                    coord_str(a_waiter->coords.thread_idx) + ") but " + std::to_string(done) +
                    " have ended (e.g. thread " + coord_str(a_finisher->coords.thread_idx) +
                    "): the kernel would hang or misbehave on the device");
      ok = false;
      break;
    }
    for (Fiber& f : b.fibers) f.state = State::kRunnable;  // everyone arrived: release the barrier
  }
  for (auto& s : b.static_smem) std::free(s.second);
  b.static_smem.clear();
  std::free(b.dynamic_smem);
  b.dynamic_smem = nullptr;
  return ok;
}

}  // namespace

void run_grid(dim3 grid, dim3 block, size_t dynamic_smem, void (*body)(void*), void* arg) {
  if (g_block) {
    set_error(cudaErrorLaunchFailure, "a kernel launched another kernel: dynamic parallelism is not emulated");
    return;
  }
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64) {
    set_error(cudaErrorInvalidConfiguration, "launch with block " + coord_str({block.x, block.y, block.z}) +
                                                 ": at most 1024 threads, 1024 x 1024 x 64");
    return;
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535) {
    set_error(cudaErrorInvalidConfiguration, "launch with grid " + coord_str({grid.x, grid.y, grid.z}) +
                                                 ": each dimension >= 1, x < 2^31, y and z <= 65535");
    return;
  }
  if (dynamic_smem > 48 * 1024) {
    set_error(cudaErrorInvalidValue, "launch with " + std::to_string(dynamic_smem) +
                                         " bytes of dynamic shared memory: more than 48 KiB needs an opt-in that "
                                         "the emulation does not model");
    return;
  }
  thread_local StackPool stacks;
  thread_local std::mt19937_64 rng(order_seed());
  Block b;
  b.body = body;
  b.arg = arg;
  b.fibers.resize(size_t(threads));
  g_block = &b;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        size_t i = 0;
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx)
              b.fibers[i++].coords = ThreadCoords{{tx, ty, tz}, {bx, by, bz}, block, grid};
        if (!run_block(b, stacks, rng, dynamic_smem)) {
          g_block = nullptr;
          return;
        }
      }
  g_block = nullptr;
}

void syncthreads(const char* file, int line) {
  Block* b = g_block;
  if (!b || !b->running) {
    std::fprintf(stderr, "cuda emu: __syncthreads() at %s:%d called outside a kernel\n", file, line);
    std::abort();
  }
  if (is_dropped(file, line)) return;
  Fiber* f = b->running;
  f->state = State::kAtBarrier;
  f->barrier_file = file;
  f->barrier_line = line;
  start_switch(&f->asan_fake_stack, b->scheduler_stack_bottom, b->scheduler_stack_size);
  context_switch(f->ctx, b->scheduler);
  finish_switch(f->asan_fake_stack, &b->scheduler_stack_bottom, &b->scheduler_stack_size);
}

void* static_shared(const void* tag, size_t bytes) {
  Block* b = g_block;
  if (!b) {
    std::fprintf(stderr, "cuda emu: a shared-memory declaration ran outside a kernel\n");
    std::abort();
  }
  for (auto& s : b->static_smem)
    if (s.first == tag) return s.second;
  void* p = std::malloc(bytes);
  std::memset(p, 0xFF, bytes);
  b->static_smem.emplace_back(tag, p);
  return p;
}

void* dynamic_shared() {
  if (!g_block) {
    std::fprintf(stderr, "cuda emu: dynamic shared memory used outside a kernel\n");
    std::abort();
  }
  return g_block->dynamic_smem;
}

}  // namespace rf_emu

// ---- runtime API on host memory ------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = rf_emu::kEmuMultiprocessors; return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }  // launches are synchronous
cudaError_t cudaGetLastError() {
  const cudaError_t e = rf_emu::g_last_error;
  rf_emu::g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return rf_emu::g_last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulation: see the message above)";
  }
  return "unknown error";
}
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = std::malloc(bytes ? bytes : 1);  // exact size: ASan reports a kernel reading past the end
  return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes) std::memset(ptr, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) { return cudaMemset(ptr, value, bytes); }

// Streams and events are tokens (everything is synchronous); events keep the host time they were recorded at.
struct CUstream_st {
  int unused = 0;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
};
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  *stream = new CUstream_st;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) { return cudaStreamCreate(stream); }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) { return cudaEventCreate(event); }
cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::malloc(bytes ? bytes : 1);
  return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(end->t - start->t).count();
  return cudaSuccess;
}
