#include "memtune.h"

#include <CppUTest/TestHarness.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

// AddressSanitizer replaces malloc: no glibc arenas to tune or count.
#ifndef __SANITIZE_ADDRESS__

namespace {

// The number of malloc arenas the process has (malloc_info lists each as a <heap>).
int arenas() {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  if (f == nullptr) return -1;
  malloc_info(0, f);
  std::fclose(f);
  const std::string xml(buf, len);
  std::free(buf);
  int n = 0;
  for (size_t at = xml.find("<heap nr="); at != std::string::npos; at = xml.find("<heap nr=", at + 1)) n++;
  return n;
}

// Many threads that allocate at the same time: without a limit glibc gives
// them arenas of their own.
void allocate_at_once(int threads) {
  std::barrier sync(threads);
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; i++)
    ts.emplace_back([&] {
      void* p = std::malloc(4096);
      sync.arrive_and_wait();
      std::free(p);
    });
  for (auto& t : ts) t.join();
}

}  // namespace

TEST_GROUP(Memtune){};

// In a child process, so the setting does not reach the other tests.
TEST(Memtune, ThreadsShareTheArenasThereAre) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    const int before = arenas();
    bool ok = shoal::tune_malloc();
    allocate_at_once(24);
    _exit(ok && before > 0 && arenas() == before ? 0 : 1);
  }
  int status = 0;
  CHECK_EQUAL(pid, waitpid(pid, &status, 0));
  CHECK(WIFEXITED(status));
  CHECK_EQUAL(0, WEXITSTATUS(status));
}
#endif
