// CppUTest runner for all unit tests. Leak detection via CppUTest's operator
// new overloads is off: the sanitizer build (make SAN=1 test) checks leaks.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>

int main(int argc, char** argv) {
  MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
  return CommandLineTestRunner::RunAllTests(argc, argv);
}
