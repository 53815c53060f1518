/* Search's int4 pass: every row of the library scored against one query, from 4-bit rows.

   A row's components come in groups (of 64, or of 32 where 64 does not divide the dimension); each
   group keeps 16 levels (0..15) from its least component to its most: component = level * scale +
   least. The query is int8. A group's part of a row's score is scale * sum(level * query) + least *
   sum(query), so the levels are multiplied as unsigned bytes by the query's signed bytes, four at a
   time in each 32-bit lane (AVX-512 VNNI's vpdpbusd; AVX2's vpmaddubsw and vpmaddwd without VNNI).

   Rows are stored in tiles of 16 so that lane r of a 64-byte load is row r: no row ever needs its
   lanes added together. In a tile, each group is a chunk of 64 bytes for each 8 of its components
   (lane r holds row r's components 8c..8c+3 in the low nibbles and 8c+4..8c+7 in the high ones),
   then the 16 rows' scales and the 16 rows' leasts as float16: 576 bytes a group of 64, 288 bytes a
   row at 512 dimensions. gallery/vector_file.py writes the tiles and calls score(). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define TILE_ROWS 16

typedef void (*kernel_fn)(const uint8_t *, const int64_t *, int64_t, int64_t, int, int, const int8_t *,
                          const float *, float *);

static inline const uint8_t *tile_at(const uint8_t *tiles, const int64_t *listed, int64_t first, int64_t i,
                                     int groups, int chunks) {
    int64_t tile = listed ? listed[i] : first + i;
    return tiles + tile * (int64_t)groups * (chunks * 64 + 64);
}

static inline int32_t four_bytes(const int8_t *at) {
    int32_t value;
    memcpy(&value, at, 4);
    return value;
}

__attribute__((target("avx512f,avx512bw,avx512vnni,f16c"))) static void
score_vnni(const uint8_t *tiles, const int64_t *listed, int64_t first, int64_t count, int groups, int chunks,
           const int8_t *query, const float *sums, float *out) {
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *at = tile_at(tiles, listed, first, i, groups, chunks);
        __m512 total = _mm512_setzero_ps();
        for (int g = 0; g < groups; g++, at += chunks * 64 + 64) {
            const int8_t *part = query + g * chunks * 8;
            __m512i dot = _mm512_setzero_si512();
            for (int c = 0; c < chunks; c++) {
                __m512i packed = _mm512_loadu_si512((const void *)(at + c * 64));
                __m512i low = _mm512_and_si512(packed, low_nibbles);
                __m512i high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
                dot = _mm512_dpbusd_epi32(dot, low, _mm512_set1_epi32(four_bytes(part + 8 * c)));
                dot = _mm512_dpbusd_epi32(dot, high, _mm512_set1_epi32(four_bytes(part + 8 * c + 4)));
            }
            __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(at + chunks * 64)));
            __m512 least = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(at + chunks * 64 + 32)));
            total = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), total);
            total = _mm512_fmadd_ps(least, _mm512_set1_ps(sums[g]), total);
        }
        _mm512_storeu_ps(out + i * TILE_ROWS, total);
    }
}

__attribute__((target("avx2,fma,f16c"))) static void score_avx2(const uint8_t *tiles, const int64_t *listed,
                                                                 int64_t first, int64_t count, int groups,
                                                                 int chunks, const int8_t *query, const float *sums,
                                                                 float *out) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *at = tile_at(tiles, listed, first, i, groups, chunks);
        __m256 total[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int g = 0; g < groups; g++, at += chunks * 64 + 64) {
            const int8_t *part = query + g * chunks * 8;
            __m256i dot[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
            for (int c = 0; c < chunks; c++) {
                __m256i low_query = _mm256_set1_epi32(four_bytes(part + 8 * c));
                __m256i high_query = _mm256_set1_epi32(four_bytes(part + 8 * c + 4));
                for (int half = 0; half < 2; half++) {  // rows 0-7, then 8-15
                    __m256i packed = _mm256_loadu_si256((const __m256i *)(at + c * 64 + half * 32));
                    __m256i low = _mm256_and_si256(packed, low_nibbles);
                    __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
                    // four products of at most 15 * 127 fit 16 bits before they are widened
                    __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(low, low_query),
                                                     _mm256_maddubs_epi16(high, high_query));
                    dot[half] = _mm256_add_epi32(dot[half], _mm256_madd_epi16(pairs, ones));
                }
            }
            const uint8_t *scales = at + chunks * 64;
            __m256 sum = _mm256_set1_ps(sums[g]);
            for (int half = 0; half < 2; half++) {
                __m256 scale = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + half * 16)));
                __m256 least = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + 32 + half * 16)));
                total[half] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot[half]), total[half]);
                total[half] = _mm256_fmadd_ps(least, sum, total[half]);
            }
        }
        _mm256_storeu_ps(out + i * TILE_ROWS, total[0]);
        _mm256_storeu_ps(out + i * TILE_ROWS + 8, total[1]);
    }
}

static const struct {
    const char *name;
    kernel_fn run;
} KERNELS[] = {{"avx512vnni", score_vnni}, {"avx2", score_avx2}};

static int runs_here(int index) {
    __builtin_cpu_init();
    if (index == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

static PyObject *kernels(PyObject *self, PyObject *unused) {
    PyObject *names = PyList_New(0);
    for (int i = 0; names && i < (int)(sizeof KERNELS / sizeof KERNELS[0]); i++) {
        if (!runs_here(i)) continue;
        PyObject *name = PyUnicode_FromString(KERNELS[i].name);
        if (name == NULL || PyList_Append(names, name) < 0) Py_CLEAR(names);
        Py_XDECREF(name);
    }
    return names;
}

static PyObject *score(PyObject *self, PyObject *args) {
    Py_buffer tiles, query, sums, out, listed = {0};
    const char *name;
    int groups, chunks;
    Py_ssize_t first, count;
    if (!PyArg_ParseTuple(args, "sy*iiy*y*w*nn|y*", &name, &tiles, &groups, &chunks, &query, &sums, &out, &first,
                          &count, &listed))
        return NULL;
    kernel_fn run = NULL;
    for (int i = 0; i < (int)(sizeof KERNELS / sizeof KERNELS[0]); i++)
        if (strcmp(name, KERNELS[i].name) == 0 && runs_here(i)) run = KERNELS[i].run;
    const char *wrong = NULL;
    Py_ssize_t tile_count = groups > 0 && chunks > 0 ? tiles.len / ((Py_ssize_t)groups * (chunks * 64 + 64)) : 0;
    if (run == NULL)
        wrong = "no such kernel on this CPU";
    else if (groups <= 0 || chunks <= 0 || chunks > 64 || query.len != (Py_ssize_t)groups * chunks * 8 ||
             sums.len != (Py_ssize_t)groups * 4)
        wrong = "the query does not match the tiles' groups";
    else if (count < 0 || out.len < count * TILE_ROWS * 4)
        wrong = "out holds fewer than 16 float32 scores a tile";
    else if (listed.buf ? listed.len < count * 8 : (first < 0 || first + count > tile_count))
        wrong = "tiles outside the buffer";
    if (wrong == NULL && listed.buf)
        for (Py_ssize_t i = 0; i < count; i++) {
            int64_t tile = ((const int64_t *)listed.buf)[i];
            if (tile < 0 || tile >= tile_count) wrong = "a listed tile outside the buffer";
        }
    if (wrong == NULL) {
        Py_BEGIN_ALLOW_THREADS run(tiles.buf, listed.buf, first, count, groups, chunks, query.buf, sums.buf, out.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&tiles);
    PyBuffer_Release(&query);
    PyBuffer_Release(&sums);
    PyBuffer_Release(&out);
    if (listed.buf) PyBuffer_Release(&listed);
    if (wrong) return PyErr_Format(PyExc_ValueError, "%s", wrong);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"kernels", kernels, METH_NOARGS, "The kernels this CPU can run, of avx512vnni and avx2."},
    {"score", score, METH_VARARGS,
     "score(kernel, tiles, groups, chunks, query, sums, out, first, count[, listed]): 16 float32 scores a tile "
     "into out, for count tiles from first (or for listed[:count], int64 tile numbers); chunks: 8 components "
     "each, in a group. The GIL is let go."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_int4", "Search's int4 pass (gallery/int4.c).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__int4(void) { return PyModule_Create(&module); }
