/* MinHash's inner loop for curate_filters._kernels: row[k] = min(row[k], a[k] * x + b[k]).
 *
 * Built once per instruction set and picked when the module loads (GCC/Clang target_clones on
 * x86-64 Linux): the baseline SSE2 has no 32-bit vector multiply, AVX2 and AVX-512 do, and
 * this loop is most of MinHash's arithmetic. Elsewhere (e.g. aarch64, whose NEON has one) the
 * compiler's own vectorisation is used.
 */
#ifndef CURATE_PERMUTE_H
#define CURATE_PERMUTE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void permute_min(const uint32_t *restrict a, const uint32_t *restrict b, uint32_t x,
                        uint32_t *restrict row, size_t n) {
    for (size_t k = 0; k < n; k++) {
        uint32_t v = a[k] * x + b[k];
        row[k] = v < row[k] ? v : row[k];
    }
}

#endif
