# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled per-byte loops of the dedup hot path, where numpy needs many passes over a batch."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

# Bits of a code point's entry in the separator table (see curate_filters.dedup.normalize).
cdef enum:
    IN_RUN = 1  # a run of two or more of these becomes one space
    ALONE = 2  # one of these alone becomes one space

cdef uint64_t LEN_MIX = 0xC2B2AE3D27D4EB4FULL


cdef extern from "_permute.h":
    void permute_min(const uint32_t *a, const uint32_t *b, uint32_t x, uint32_t *row,
                     size_t n) noexcept nogil


cdef int check_offsets(const int64_t[::1] offsets, Py_ssize_t size) except -1:
    """Raise unless the offsets are non-decreasing, from 0 or more to at most size."""
    cdef Py_ssize_t i
    if offsets.shape[0] == 0:
        raise ValueError("offsets need at least one entry")
    if offsets[0] < 0 or offsets[offsets.shape[0] - 1] > size:
        raise ValueError(f"offsets run outside the {size} bytes")
    for i in range(offsets.shape[0] - 1):
        if offsets[i + 1] < offsets[i]:
            raise ValueError(f"offsets decrease at {i}")
    return 0


cdef inline uint64_t fmix64(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


cdef inline uint32_t fmix32(uint32_t h) noexcept nogil:
    h ^= h >> 16
    h *= 0x85EBCA6BU
    h ^= h >> 13
    h *= 0xC2B2AE35U
    h ^= h >> 16
    return h


cdef inline int char_at(const uint8_t *data, int64_t i, int64_t end, uint32_t *cp) noexcept nogil:
    """Decode the (valid) UTF-8 character at i: its code point into cp, its length returned."""
    cdef uint8_t b0 = data[i]
    if b0 < 0x80 or i + 1 >= end:
        cp[0] = b0
        return 1
    if b0 < 0xE0:
        cp[0] = ((b0 & 0x1F) << 6) | (data[i + 1] & 0x3F)
        return 2
    if b0 < 0xF0 or i + 2 >= end:
        cp[0] = ((b0 & 0x0F) << 12) | ((data[i + 1] & 0x3F) << 6) | (data[i + 2] & 0x3F)
        return 3
    cp[0] = (((b0 & 0x07) << 18) | ((data[i + 1] & 0x3F) << 12) | ((data[i + 2] & 0x3F) << 6)
             | (data[i + 3] & 0x3F))
    return 4


def collapse_separators(
    const uint8_t[::1] data,
    const int64_t[::1] offsets,
    const uint8_t[::1] table,
    uint8_t[::1] out,
    int32_t[::1] out_offsets,
) -> None:
    """Each string with `[run]{2,}|[alone]` replaced by one space, then trimmed of spaces.

    The same as RE2's leftmost-first replacement with those two classes (the table gives each
    code point's classes), then `utf8_trim(" ")`: `out` needs len(data) bytes, `out_offsets`
    len(offsets) entries.
    """
    cdef Py_ssize_t n = offsets.shape[0] - 1, d
    cdef int64_t i, hi, j, w = 0, doc_start
    cdef int k, k2
    cdef uint32_t cp, cp2
    check_offsets(offsets, data.shape[0])
    if out.shape[0] < data.shape[0] or out_offsets.shape[0] != offsets.shape[0]:
        raise ValueError("out needs len(data) bytes and out_offsets len(offsets) entries")
    if table.shape[0] < 0x110000:
        raise ValueError("the table needs an entry per code point (0x110000)")
    if data.shape[0] == 0:
        out_offsets[:] = 0
        return
    # Raw pointers: passing a memoryview to the inlined decoder would count a reference a call.
    cdef const uint8_t *src = &data[0]
    cdef const uint8_t *cls = &table[0]
    cdef uint8_t *dst = &out[0]
    with nogil:
        out_offsets[0] = 0
        for d in range(n):
            i = offsets[d]
            hi = offsets[d + 1]
            doc_start = w
            while i < hi:
                if src[i] < 0x80 and cls[src[i]] == 0:  # the common case: a letter of a word
                    dst[w] = src[i]
                    w += 1
                    i += 1
                    continue
                k = char_at(src, i, hi, &cp)
                if cls[cp] & IN_RUN and i + k < hi:
                    k2 = char_at(src, i + k, hi, &cp2)
                    if cls[cp2] & IN_RUN:
                        j = i + k + k2
                        while j < hi:
                            k2 = char_at(src, j, hi, &cp2)
                            if not cls[cp2] & IN_RUN:
                                break
                            j += k2
                        if w > doc_start:  # a leading space is trimmed
                            dst[w] = 32
                            w += 1
                        i = j
                        continue
                if cls[cp] & ALONE:
                    if w > doc_start:
                        dst[w] = 32
                        w += 1
                elif cp != 32 or w > doc_start:
                    for j in range(k):
                        dst[w + j] = src[i + j]
                    w += k
                i += k
            while w > doc_start and dst[w - 1] == 32:  # and so is a trailing one
                w -= 1
            out_offsets[d + 1] = <int32_t>w


def word_minhash(
    const uint8_t[::1] data,
    const int64_t[::1] offsets,
    int ngram,
    const uint32_t[::1] a,
    const uint32_t[::1] b,
    const uint64_t[::1] powers,
    const uint64_t[::1] inv_powers,
    uint32_t[:, ::1] sig,
    int64_t[::1] counts,
) -> None:
    """MinHash (datasketch's affine32 permutations) of word `ngram`-shingles of normalised text.

    Words lie between single spaces; a shingle is `ngram` consecutive words with the spaces
    between them (a shorter document is one shingle, itself), hashed as `signatures.poly_hash32`
    does: a polynomial of its bytes mod 2^64 (here from per-document prefix sums, `powers` and
    `inv_powers` the base's powers and their inverses, as long as the longest document + 1),
    then fmix64's top 32 bits. Writes each document's signature row and shingle count.
    """
    cdef Py_ssize_t n = offsets.shape[0] - 1, n_perm = a.shape[0], d, k
    cdef int64_t lo, hi, q, st, en, slot, words
    cdef uint64_t acc, h
    cdef uint32_t x
    cdef uint32_t *row
    # The last `ngram` word starts and the prefix sum at each: a ring, so memory is O(ngram).
    cdef int64_t[64] start_at
    cdef uint64_t[64] prefix_at
    if ngram < 1 or ngram > 64:
        raise ValueError(f"ngram must be in [1, 64], got {ngram}")
    check_offsets(offsets, data.shape[0])
    if b.shape[0] != n_perm or sig.shape[0] != n or sig.shape[1] != n_perm or counts.shape[0] != n:
        raise ValueError("a, b, sig and counts disagree on the documents or permutations")
    for d in range(n):
        if offsets[d + 1] - offsets[d] >= min(powers.shape[0], inv_powers.shape[0]):
            raise ValueError(f"powers are too short for document {d}")
    if n_perm == 0 or n == 0:
        return
    cdef const uint32_t *pa = &a[0]
    cdef const uint32_t *pb = &b[0]
    with nogil:
        for d in range(n):
            lo = offsets[d]
            hi = offsets[d + 1]
            row = &sig[d, 0]
            for k in range(n_perm):
                row[k] = 0xFFFFFFFFU
            counts[d] = 0
            if hi <= lo:
                continue
            acc = 0
            words = 0
            start_at[0] = lo
            prefix_at[0] = 0
            q = lo
            while True:
                if q == hi or data[q] == 32:  # a word ends at q
                    words += 1
                    if words >= ngram or q == hi:
                        if words >= ngram:
                            slot = (words - ngram) % ngram
                        else:  # a document of fewer than ngram words: one shingle, itself
                            slot = 0
                        if words >= ngram or counts[d] == 0:
                            st = start_at[slot]
                            en = q
                            h = (acc - prefix_at[slot]) * inv_powers[st - lo]
                            h ^= <uint64_t>(en - st) * LEN_MIX
                            x = fmix32(<uint32_t>(fmix64(h) >> 32))
                            permute_min(pa, pb, x, row, n_perm)
                            counts[d] += 1
                    if q == hi:
                        break
                    # the next word starts after this space
                    acc += (<uint64_t>data[q] + 1) * powers[q - lo]
                    q += 1
                    start_at[words % ngram] = q
                    prefix_at[words % ngram] = acc
                    continue
                acc += (<uint64_t>data[q] + 1) * powers[q - lo]
                q += 1


cdef inline uint64_t pair_slot(int64_t a, int64_t b, uint64_t mask) noexcept nogil:
    return fmix64(<uint64_t>a * 0x9E3779B97F4A7C15ULL + <uint64_t>b) & mask


def ngram_repetition(
    const int64_t[::1] codes,
    const int64_t[::1] doc_offsets,
    const int64_t[::1] word_len,
    const uint8_t[::1] top_wanted,
    const uint8_t[::1] dup_wanted,
    int64_t[:, ::1] top_out,
    int64_t[:, ::1] dup_out,
) -> None:
    """Gopher's word n-gram repetition, per document, for orders 1 to len(top_wanted) - 1.

    `codes` are the words of all documents (equal words, equal codes; document d's words are
    codes[doc_offsets[d]:doc_offsets[d + 1]]) and `word_len` their lengths in characters. For
    each order n with `top_wanted[n]`, `top_out[n, d]` is the characters of d's most frequent
    n-gram (its words joined by one space) times its count, ties to the n-gram seen first (d's
    first n-gram when none repeats); with `dup_wanted[n]`, `dup_out[n, d]` is the characters of
    the words covered by an occurrence of an n-gram after its first, each word once.

    N-grams are grouped exactly, by (group of the (n-1)-gram, next word), and only where the
    (n-1)-gram repeats, with one hash table reused throughout (stamped per order, never cleared).
    """
    cdef Py_ssize_t n_docs = doc_offsets.shape[0] - 1, d
    cdef int max_order = top_wanted.shape[0] - 1, n, first_order
    cdef int64_t longest = 0, lo, w, i, p, m, g, slot, n_groups, best, new_from, covered, prev_end
    cdef uint64_t mask, size = 16
    check_offsets(doc_offsets, codes.shape[0])
    if word_len.shape[0] != codes.shape[0] or dup_wanted.shape[0] != top_wanted.shape[0]:
        raise ValueError("word_len must match codes, dup_wanted top_wanted")
    if top_out.shape[0] != max_order + 1 or dup_out.shape[0] != max_order + 1 or (
        top_out.shape[1] != n_docs or dup_out.shape[1] != n_docs
    ):
        raise ValueError("top_out and dup_out need (orders + 1, documents) entries")
    for d in range(n_docs):
        longest = max(longest, doc_offsets[d + 1] - doc_offsets[d])
    while size < 2 * <uint64_t>longest + 2:
        size <<= 1
    mask = size - 1
    import numpy as np

    cdef int64_t[::1] key_a = np.empty(size, np.int64)
    cdef int64_t[::1] key_b = np.empty(size, np.int64)
    cdef int64_t[::1] value = np.empty(size, np.int64)
    cdef int64_t[::1] stamp = np.zeros(size, np.int64)
    cdef int64_t[::1] start = np.empty(longest + 1, np.int64)  # candidate positions
    cdef int64_t[::1] group = np.empty(longest + 1, np.int64)  # their group at this order
    cdef int64_t[::1] count = np.empty(longest + 1, np.int64)  # per group: occurrences
    cdef int64_t[::1] first = np.empty(longest + 1, np.int64)  # per group: first position
    cdef int64_t[::1] chars = np.empty(longest + 1, np.int64)  # word lengths' prefix sums
    cdef int64_t generation = 0, a, b
    first_order = 1 if max_order >= 1 and top_wanted[1] | dup_wanted[1] else 2
    with nogil:
        for d in range(n_docs):
            lo = doc_offsets[d]
            w = doc_offsets[d + 1] - lo
            chars[0] = 0
            for i in range(w):
                chars[i + 1] = chars[i] + word_len[lo + i]
            for n in range(1, max_order + 1):
                # Until an n-gram is seen to repeat: the first n-gram, once (none if too short).
                top_out[n, d] = chars[n] - chars[0] + n - 1 if top_wanted[n] and n <= w else 0
                dup_out[n, d] = 0
            m = 0  # candidates of the order below: every position to begin with
            for n in range(first_order, max_order + 1):
                if n > w:
                    break
                # This order's candidates: where the (n-1)-gram repeats (all, at the first).
                if n == first_order:
                    m = w - n + 1
                    for i in range(m):
                        start[i] = i
                else:
                    p = 0
                    for i in range(m):
                        if count[group[i]] > 1 and start[i] + n <= w:
                            start[p] = start[i]
                            group[p] = group[i]
                            p += 1
                    m = p
                    if m == 0:
                        break
                generation += 1
                n_groups = 0
                for i in range(m):
                    if n == 1:
                        a, b = -1, codes[lo + start[i]]
                    elif n == first_order:
                        a, b = codes[lo + start[i]], codes[lo + start[i] + 1]
                    else:
                        a, b = group[i], codes[lo + start[i] + n - 1]
                    slot = pair_slot(a, b, mask)
                    while stamp[slot] == generation and (key_a[slot] != a or key_b[slot] != b):
                        slot = (slot + 1) & mask
                    if stamp[slot] == generation:
                        g = value[slot]
                        count[g] += 1
                    else:
                        stamp[slot] = generation
                        key_a[slot] = a
                        key_b[slot] = b
                        g = n_groups
                        value[slot] = g
                        count[g] = 1
                        first[g] = start[i]
                        n_groups += 1
                    group[i] = g
                if top_wanted[n]:
                    # Groups are numbered in order of first occurrence: the first of the most
                    # frequent wins a tie. None repeats: the document's first n-gram, once.
                    best = 0
                    for g in range(1, n_groups):
                        if count[g] > count[best]:
                            best = g
                    if n_groups and count[best] > 1:
                        p = first[best]
                        top_out[n, d] = count[best] * (chars[p + n] - chars[p] + n - 1)
                if dup_wanted[n]:
                    covered = 0
                    prev_end = 0
                    for i in range(m):
                        p = start[i]
                        if first[group[i]] != p:  # a repeat: its words are covered
                            new_from = p if p > prev_end else prev_end
                            if p + n > new_from:
                                covered += chars[p + n] - chars[new_from]
                            prev_end = p + n
                    dup_out[n, d] = covered
