// The register check of docs/reliability.md ("Known platform fault", Mechanism): does a thread's AVX-512 state survive
// competing threads, signals and membarrier IPIs on this machine? No .NET, no oneDNN. Needs an AVX-512 CPU.
//   gcc -O2 -mavx512f -mavx512bw -pthread scripts/avx512-state-check.c -o /tmp/avx512-state-check
//   for m in none spin membarrier signal; do /tmp/avx512-state-check $m 1500; done
// Dec 1 2026 (AMD EPYC, kernel 6.18.44, 2 vCPUs, load average 12-18): 0 corrupted registers in every mode (300-1,500 trials each).
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static volatile int stop; static pid_t target;
static void handler(int s) { (void)s; }
static void *interrupter(void *mode) {
  while (!stop) {
    if (!strcmp(mode, "membarrier")) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else if (!strcmp(mode, "signal")) syscall(SYS_tgkill, getpid(), target, SIGUSR1);
    else if (!strcmp(mode, "spin")) { for (volatile long i = 0; i < 100000000; i++) {} }
    for (volatile int i = 0; i < 20000; i++) {}
  }
  return 0;
}
#define SET(r) "vpbroadcastd %%eax, %%" #r "\n\tinc %%eax\n\t"
#define GET(r, i) "vmovdqu32 %%" #r ", " #i "*64(%0)\n\t"
int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "none"; int trials = argc > 2 ? atoi(argv[2]) : 2000;
  signal(SIGUSR1, handler); target = syscall(SYS_gettid);
  syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
  pthread_t t, t2; pthread_create(&t, 0, interrupter, (void *)mode); pthread_create(&t2, 0, interrupter, (void *)mode);
  static uint32_t out[32][16]; uint64_t k[8]; int badLow = 0, badHigh16 = 0, badUpper = 0, badK = 0;
  for (int n = 0; n < trials; n++) {
    unsigned base = 1000u + 64u * n; uint64_t kbase = (uint64_t)(n & 0xff) << 16;
    asm volatile("mov %2, %%eax\n\t"
      SET(zmm0) SET(zmm1) SET(zmm2) SET(zmm3) SET(zmm4) SET(zmm5) SET(zmm6) SET(zmm7) SET(zmm8) SET(zmm9) SET(zmm10) SET(zmm11) SET(zmm12) SET(zmm13) SET(zmm14) SET(zmm15)
      SET(zmm16) SET(zmm17) SET(zmm18) SET(zmm19) SET(zmm20) SET(zmm21) SET(zmm22) SET(zmm23) SET(zmm24) SET(zmm25) SET(zmm26) SET(zmm27) SET(zmm28) SET(zmm29) SET(zmm30) SET(zmm31)
      "mov $0x1111, %%eax\n\tkmovw %%eax, %%k1\n\tmov $0x2222, %%eax\n\tkmovw %%eax, %%k2\n\tmov $0x3333, %%eax\n\tkmovw %%eax, %%k3\n\t"
      "mov $0x4444, %%eax\n\tkmovw %%eax, %%k4\n\tmov $0x5555, %%eax\n\tkmovw %%eax, %%k5\n\tmov $0x6666, %%eax\n\tkmovw %%eax, %%k6\n\tmov $0x7777, %%eax\n\tkmovw %%eax, %%k7\n\t"
      "mov $3000000, %%ecx\n1:\n\tdec %%ecx\n\tjnz 1b\n\t"
      GET(zmm0,0) GET(zmm1,1) GET(zmm2,2) GET(zmm3,3) GET(zmm4,4) GET(zmm5,5) GET(zmm6,6) GET(zmm7,7) GET(zmm8,8) GET(zmm9,9) GET(zmm10,10) GET(zmm11,11) GET(zmm12,12) GET(zmm13,13) GET(zmm14,14) GET(zmm15,15)
      GET(zmm16,16) GET(zmm17,17) GET(zmm18,18) GET(zmm19,19) GET(zmm20,20) GET(zmm21,21) GET(zmm22,22) GET(zmm23,23) GET(zmm24,24) GET(zmm25,25) GET(zmm26,26) GET(zmm27,27) GET(zmm28,28) GET(zmm29,29) GET(zmm30,30) GET(zmm31,31)
      "kmovq %%k1, 8(%1)\n\tkmovq %%k2, 16(%1)\n\tkmovq %%k3, 24(%1)\n\tkmovq %%k4, 32(%1)\n\tkmovq %%k5, 40(%1)\n\tkmovq %%k6, 48(%1)\n\tkmovq %%k7, 56(%1)\n\t"
      : : "r"(out), "r"(k), "r"(base) : "rax", "rcx", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
        "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
    int low = 0, upper = 0, high16 = 0, kb = 0;
    for (int r = 0; r < 32; r++) for (int e = 0; e < 16; e++) if (out[r][e] != base + r) { if (r >= 16) high16 = 1; else if (e >= 4) upper = 1; else low = 1; }
    for (int r = 1; r < 8; r++) if ((k[r] & 0xffff) != 0x1111u * r) kb = 1;
    badLow += low; badUpper += upper; badHigh16 += high16; badK += kb;
  }
  stop = 1; pthread_join(t, 0); pthread_join(t2, 0);
  printf("%s, %d trials: corrupted xmm0-15 %d, upper bits of zmm0-15 %d, zmm16-31 %d, k1-7 %d\n", mode, trials, badLow, badUpper, badHigh16, badK);
  return 0;
}
