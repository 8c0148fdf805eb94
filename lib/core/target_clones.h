/* NN_VECTOR_CLONES marks a hot element-wise loop for an AVX2 copy that the
 * loader picks on CPUs that have it (GCC's target_clones), next to the
 * baseline SSE2 one. Element-wise float arithmetic rounds the same at any
 * vector width (and ISO C mode keeps GCC from fusing multiply-adds), so the
 * results are the same whichever copy runs. */
#ifndef NNSEQ_TARGET_CLONES_H
#define NNSEQ_TARGET_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NN_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NN_VECTOR_CLONES
#endif

#endif
