// Checkpoints a store's WAL on a thread and connection of its own while
// another connection keeps writing (the worker storing received chunks).
// A checkpoint reads the new frames back from the WAL, writes them into the
// database and fsyncs both files: about as much work as writing them in the
// first place, which the writer no longer waits for.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "result.h"
#include "store.h"

namespace shoal {

class Checkpointer {
 public:
  // Opens a second connection to the database at `db_path` and starts the thread.
  static Result<std::unique_ptr<Checkpointer>> start(const std::string& db_path);
  ~Checkpointer();  // cuts a checkpoint under way short, joins
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Frames were committed: copy them soon (requests made while a pass runs
  // merge into one more pass).
  void kick();
  // Lets a checkpoint under way, and one asked for by kick(), finish; then
  // stops the thread.
  void stop();

 private:
  explicit Checkpointer(std::unique_ptr<Store> conn) : conn_(std::move(conn)) {}
  void run();
  void join(bool interrupt);

  std::unique_ptr<Store> conn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool kicked_ = false;
  bool interrupted_ = false;  // the destructor: no more passes
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace shoal
