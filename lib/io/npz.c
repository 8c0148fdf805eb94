/* numpy .npz files: a zip archive (PKWARE APPNOTE 6.3) of .npy arrays
 * (numpy/lib/format.py), read and written with zlib alone. The .npy inside
 * each entry is parsed by io/npy_format.c, which the .npy data reader
 * shares.
 *
 * The reader trusts nothing: the end-of-central-directory record is searched
 * for, every offset and length is checked against the file size before it is
 * used, sizes are taken from the central directory only (local headers may
 * carry zeros under the data-descriptor flag, or ZIP64 extras that np.savez
 * adds with force_zip64), and every entry's CRC-32 is verified. What an
 * archive may claim is bounded before anything is allocated for it: no two
 * entries may share bytes (the "overlap" zip bomb, where a 100 KB file
 * inflates to gigabytes), an entry's size must be one its compressed bytes
 * can give and match the .npy header at its start, the sizes together stay
 * under NPZ_TOTAL_LIMIT, and inflating stops one byte past the declared
 * size. Opening reads the directory alone; entries are inflated one at a
 * time, when asked for.
 *
 * The writer stores what checkpoints and exports hold: float32, int64 and
 * uint8; the reader takes every dtype io/npy_format.h accepts. */
#include "io/npz.h"

#include "io/atomic_file.h"
#include "io/npy_format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* zlib's next_in becomes const, so arrays can be deflated without a cast. */
#define ZLIB_CONST
#include <zlib.h>

#define LOCAL_SIGNATURE 0x04034b50u
#define CENTRAL_SIGNATURE 0x02014b50u
#define END_SIGNATURE 0x06054b50u
#define ZIP64_EXTRA_ID 0x0001u
/* Sizes and offsets at or above this are ZIP64 markers in 32-bit fields. */
#define ZIP32_LIMIT 0xFFFFFFFFu
#define ENTRY_COUNT_LIMIT 0xFFFFu
/* More than any model nnseq trains, less than what 65534 entries of up to
 * 4 GiB could claim. */
#define NPZ_TOTAL_LIMIT ((uint64_t)16 << 30)

enum {
    LOCAL_HEADER_SIZE = 30,
    CENTRAL_HEADER_SIZE = 46,
    END_RECORD_SIZE = 22,
    MAX_COMMENT_SIZE = 0xFFFF,
    METHOD_STORED = 0,
    METHOD_DEFLATED = 8,
    FLAG_ENCRYPTED = 1 << 0,
    FLAG_STRONG_ENCRYPTION = 1 << 6,
    FLAG_UTF8_NAME = 1 << 11,
    FLAG_MASKED_DIRECTORY = 1 << 13, /* an encrypted central directory's local headers are masked */
    ZIP_VERSION = 20,           /* 2.0: deflate, what python's zipfile writes */
    VERSION_MADE_BY_UNIX = 0x0314,
    DOS_DATE_1980 = 0x0021,     /* 1980-01-01, numpy's fixed timestamp */
    DEFLATE_MAX_RATIO = 1032,   /* zlib's bound on inflated / deflated bytes */
    NPY_PREFIX_V1 = 10,         /* magic (6), version (2), u16 header length */
    NPY_ALIGN = 64,
    NPY_GROWTH_DIGITS = 21,     /* numpy's spare room for growing the first axis */
    /* The .npy header text read at most, as data/npy.c: numpy reads 10000
     * bytes unless told otherwise, and 64 long dims need under 2000. */
    NPY_TEXT_LIMIT = 1 << 16,
    ZLIB_PIECE = 1 << 20,       /* bytes handed to zlib at once (its lengths are uInt) */
};

static const char NPY_SUFFIX[] = ".npy";

/* What the writer stores. */
static const struct npy_dtype {
    const char *descr;
    nn_dtype dtype;
} npy_dtypes[] = {{"<f4", NN_F32}, {"<i8", NN_I64}, {"|u1", NN_U8}};

static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put16(unsigned char *p, uint32_t value) {
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
}

static void put32(unsigned char *p, uint32_t value) {
    put16(p, value & 0xFFFF);
    put16(p + 2, value >> 16);
}

/* zlib's crc32 takes a uInt length; feed it in pieces. */
static uint32_t crc_update(uint32_t crc, const unsigned char *data, size_t length) {
    while (length > 0) {
        size_t piece = length < ZLIB_PIECE ? length : ZLIB_PIECE;
        crc = (uint32_t)crc32(crc, data, (uInt)piece);
        data += piece;
        length -= piece;
    }
    return crc;
}

static const char *dtype_descr(nn_dtype dtype) {
    for (size_t i = 0; i < sizeof npy_dtypes / sizeof *npy_dtypes; i++)
        if (npy_dtypes[i].dtype == dtype) return npy_dtypes[i].descr;
    return NULL;
}

/* ------------------------------------------------------------- zip reader */

typedef struct npz_reader {
    char *path;
    FILE *file;
    uint64_t file_size;
    nn_error *err;
} npz_reader;

typedef struct zip_entry {
    const char *name;      /* points into the central directory, not terminated */
    size_t name_length;
    char key[sizeof ((nn_array *)0)->name]; /* the name without ".npy", terminated */
    unsigned flags, method;
    uint32_t crc;
    uint64_t compressed_size, size, local_offset;
    uint64_t data_offset;  /* after the local header, which may differ from the central one */
    int local_name_matches;
} zip_entry;

struct nn_npz {
    npz_reader reader;
    unsigned char *directory; /* the central directory as read: entry names point into it */
    zip_entry *entries;
    size_t count;
};

static int entry_error(const npz_reader *reader, const zip_entry *entry, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int entry_error(const npz_reader *reader, const zip_entry *entry, const char *format, ...) {
    char problem[768];
    va_list ap;
    va_start(ap, format);
    vsnprintf(problem, sizeof problem, format, ap);
    va_end(ap);
    int name_length = entry->name_length < 200 ? (int)entry->name_length : 200;
    return nn_error_set(reader->err, NN_ERR_INPUT, "%s: entry %.*s: %s", reader->path, name_length,
                        entry->name, problem);
}

/* Checks that length bytes at offset lie inside the file and moves there. */
static int seek_range(const npz_reader *reader, uint64_t offset, uint64_t length, const char *what) {
    if (offset > reader->file_size || length > reader->file_size - offset)
        return nn_error_set(reader->err, NN_ERR_INPUT,
                            "%s: truncated or damaged: %s (%llu bytes at offset %llu) runs past the end of the "
                            "%llu-byte file",
                            reader->path, what, (unsigned long long)length, (unsigned long long)offset,
                            (unsigned long long)reader->file_size);
    if (fseeko(reader->file, (off_t)offset, SEEK_SET) != 0)
        return nn_error_set(reader->err, NN_ERR_INPUT, "%s: cannot seek to %s: %s", reader->path, what,
                            strerror(errno));
    return 0;
}

static const char *read_problem(const npz_reader *reader) {
    return ferror(reader->file) ? strerror(errno) : "unexpected end of file";
}

static int read_at(const npz_reader *reader, uint64_t offset, void *buffer, size_t length, const char *what) {
    if (seek_range(reader, offset, length, what)) return -1;
    if (length > 0 && fread(buffer, 1, length, reader->file) != length)
        return nn_error_set(reader->err, NN_ERR_INPUT, "%s: cannot read %s: %s", reader->path, what,
                            read_problem(reader));
    return 0;
}

/* Searches back over a possible archive comment for the record whose
 * comment ends the file; failing that (bytes appended after the archive),
 * the last one whose comment fits. Returns its offset in tail or -1. */
static long find_end_signature(const unsigned char *tail, size_t tail_size) {
    long fitting = -1;
    if (tail_size < END_RECORD_SIZE) return -1;
    for (size_t at = tail_size - END_RECORD_SIZE + 1; at-- > 0;) {
        if (get32(tail + at) != END_SIGNATURE) continue;
        size_t record_end = at + END_RECORD_SIZE + get16(tail + at + 20);
        if (record_end == tail_size) return (long)at;
        if (record_end < tail_size && fitting < 0) fitting = (long)at;
    }
    return fitting;
}

/* No end record: tell a zip cut short from some other kind of file. */
static int not_a_zip(const npz_reader *reader) {
    static const unsigned char local_start[4] = {'P', 'K', 3, 4};
    if (reader->file_size == 0)
        return nn_error_set(reader->err, NN_ERR_INPUT, "%s: not a zip file (empty)", reader->path);
    unsigned char start[4];
    size_t start_size = reader->file_size < 4 ? (size_t)reader->file_size : 4;
    if (read_at(reader, 0, start, start_size, "the first bytes")) return -1;
    if (memcmp(start, local_start, start_size) == 0)
        return nn_error_set(reader->err, NN_ERR_INPUT,
                            "%s: truncated (starts like a zip file but has no end-of-central-directory record)",
                            reader->path);
    return nn_error_set(reader->err, NN_ERR_INPUT, "%s: not a zip file (no end-of-central-directory record)",
                        reader->path);
}

static int check_end_record(const npz_reader *reader, const unsigned char *record, uint64_t record_offset,
                            uint64_t *directory_offset, uint64_t *directory_size, size_t *count) {
    unsigned disk = get16(record + 4), directory_disk = get16(record + 6);
    unsigned disk_entries = get16(record + 8), entries = get16(record + 10);
    *directory_size = get32(record + 12);
    *directory_offset = get32(record + 16);
    *count = entries;
    if (entries == ENTRY_COUNT_LIMIT || *directory_size == ZIP32_LIMIT || *directory_offset == ZIP32_LIMIT)
        return nn_error_set(reader->err, NN_ERR_INPUT,
                            "%s: ZIP64 archives (over 4 GiB or 65535 entries) are not supported", reader->path);
    if (disk != 0 || directory_disk != 0 || disk_entries != entries)
        return nn_error_set(reader->err, NN_ERR_INPUT, "%s: multi-disk zip archives are not supported", reader->path);
    if (*directory_offset + *directory_size > record_offset)
        return nn_error_set(reader->err, NN_ERR_INPUT,
                            "%s: truncated or damaged: central directory (%llu bytes at offset %llu) overlaps the "
                            "end record at offset %llu",
                            reader->path, (unsigned long long)*directory_size, (unsigned long long)*directory_offset,
                            (unsigned long long)record_offset);
    return 0;
}

static int read_end_record(const npz_reader *reader, uint64_t *directory_offset, uint64_t *directory_size,
                           size_t *count) {
    uint64_t search = (uint64_t)END_RECORD_SIZE + MAX_COMMENT_SIZE;
    size_t tail_size = (size_t)(reader->file_size < search ? reader->file_size : search);
    unsigned char *tail = malloc(tail_size ? tail_size : 1);
    if (!tail) return nn_error_oom(reader->err, "the end of a zip file");
    uint64_t tail_offset = reader->file_size - tail_size;
    int status = read_at(reader, tail_offset, tail, tail_size, "the end of the file");
    long at = status ? -1 : find_end_signature(tail, tail_size);
    if (!status && at < 0) status = not_a_zip(reader);
    if (!status)
        status = check_end_record(reader, tail + at, tail_offset + (uint64_t)at, directory_offset, directory_size,
                                  count);
    free(tail);
    return status;
}

/* ZIP64 extra field: the 64-bit values of the 32-bit fields set to
 * 0xFFFFFFFF, in the order size, compressed size, local header offset. */
static int apply_zip64_extra(const npz_reader *reader, zip_entry *entry, const unsigned char *extra, size_t length) {
    uint64_t *fields[3] = {&entry->size, &entry->compressed_size, &entry->local_offset};
    while (length >= 4) {
        size_t id = get16(extra), field_size = get16(extra + 2);
        if (field_size > length - 4)
            return entry_error(reader, entry, "damaged extra field in the central directory");
        if (id == ZIP64_EXTRA_ID) {
            size_t used = 0;
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != ZIP32_LIMIT) continue;
                if (used + 8 > field_size) return entry_error(reader, entry, "ZIP64 extra field is too short");
                *fields[i] = get64(extra + 4 + used);
                used += 8;
            }
        }
        extra += 4 + field_size;
        length -= 4 + field_size;
    }
    for (int i = 0; i < 3; i++)
        if (*fields[i] == ZIP32_LIMIT) return entry_error(reader, entry, "ZIP64 marker without a ZIP64 extra field");
    return 0;
}

/* Parses the central directory header at bytes[at], which must fit in size;
 * returns the header's full length or 0 on error. */
static size_t parse_central_header(const npz_reader *reader, const unsigned char *bytes, size_t size, size_t at,
                                   zip_entry *entry) {
    const unsigned char *header = bytes + at;
    if (size - at < CENTRAL_HEADER_SIZE || get32(header) != CENTRAL_SIGNATURE) {
        nn_error_set(reader->err, NN_ERR_INPUT, "%s: damaged central directory (no entry header at offset %zu of it)",
                     reader->path, at);
        return 0;
    }
    size_t name_length = get16(header + 28), extra_length = get16(header + 30), comment_length = get16(header + 32);
    size_t total = CENTRAL_HEADER_SIZE + name_length + extra_length + comment_length;
    if (total > size - at) {
        nn_error_set(reader->err, NN_ERR_INPUT,
                     "%s: damaged central directory (entry at offset %zu runs past its end)", reader->path, at);
        return 0;
    }
    *entry = (zip_entry){.name = (const char *)header + CENTRAL_HEADER_SIZE, .name_length = name_length,
                         .flags = get16(header + 8), .method = get16(header + 10), .crc = get32(header + 16),
                         .compressed_size = get32(header + 20), .size = get32(header + 24),
                         .local_offset = get32(header + 42)};
    if (apply_zip64_extra(reader, entry, header + CENTRAL_HEADER_SIZE + name_length, extra_length)) return 0;
    return total;
}

/* What can be judged from the central directory alone; sets the key. */
static int check_entry(const npz_reader *reader, zip_entry *entry) {
    size_t suffix = sizeof NPY_SUFFIX - 1;
    if (memchr(entry->name, '\0', entry->name_length))
        return entry_error(reader, entry, "a NUL byte in its name (expected a name KEY.npy)");
    if (entry->name_length <= suffix || memcmp(entry->name + entry->name_length - suffix, NPY_SUFFIX, suffix) != 0)
        return entry_error(reader, entry, "not an array (expected a name KEY.npy)");
    size_t key_length = entry->name_length - suffix;
    if (key_length >= sizeof entry->key)
        return entry_error(reader, entry, "key longer than %zu characters", sizeof entry->key - 1);
    if (entry->flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_DIRECTORY))
        return entry_error(reader, entry, "encrypted entries are not supported");
    if (entry->method != METHOD_STORED && entry->method != METHOD_DEFLATED)
        return entry_error(reader, entry, "unsupported compression method %u (expected 0, stored, or 8, deflated)",
                           entry->method);
    if (entry->method == METHOD_STORED && entry->compressed_size != entry->size)
        return entry_error(reader, entry, "stored entry with compressed size %llu but size %llu",
                           (unsigned long long)entry->compressed_size, (unsigned long long)entry->size);
    if (entry->method == METHOD_DEFLATED && entry->size / DEFLATE_MAX_RATIO > entry->compressed_size)
        return entry_error(reader, entry, "size %llu cannot come from %llu deflated bytes (deflate gives at most %d "
                           "times its input)",
                           (unsigned long long)entry->size, (unsigned long long)entry->compressed_size,
                           DEFLATE_MAX_RATIO);
    if (entry->size >= ZIP32_LIMIT || entry->compressed_size >= ZIP32_LIMIT)
        return entry_error(reader, entry, "entries of 4 GiB or more are not supported");
    if (entry->compressed_size > reader->file_size)
        return entry_error(reader, entry, "truncated or damaged: %llu compressed bytes in a %llu-byte file",
                           (unsigned long long)entry->compressed_size, (unsigned long long)reader->file_size);
    memcpy(entry->key, entry->name, key_length);
    entry->key[key_length] = '\0';
    return 0;
}

static int compare_keys(const void *a, const void *b) {
    return strcmp((*(const zip_entry *const *)a)->key, (*(const zip_entry *const *)b)->key);
}

static int compare_offsets(const void *a, const void *b) {
    uint64_t x = (*(const zip_entry *const *)a)->local_offset, y = (*(const zip_entry *const *)b)->local_offset;
    return (x > y) - (x < y);
}

/* Sorted, so that 65534 entries take no quadratic time. */
static int check_duplicates(const nn_npz *npz, const zip_entry **order) {
    qsort(order, npz->count, sizeof *order, compare_keys);
    for (size_t i = 1; i < npz->count; i++) {
        if (strcmp(order[i - 1]->key, order[i]->key) != 0) continue;
        size_t a = (size_t)(order[i - 1] - npz->entries), b = (size_t)(order[i] - npz->entries);
        return nn_error_set(npz->reader.err, NN_ERR_INPUT, "%s: duplicate key '%s' (entries %zu and %zu)",
                            npz->reader.path, order[i]->key, a < b ? a : b, a < b ? b : a);
    }
    return 0;
}

/* Each entry's size is below 4 GiB and there are fewer than 65535, so the
 * sum cannot wrap. */
static int check_total(const nn_npz *npz) {
    uint64_t total = 0;
    for (size_t i = 0; i < npz->count; i++) total += npz->entries[i].size;
    if (total > NPZ_TOTAL_LIMIT)
        return nn_error_set(npz->reader.err, NN_ERR_INPUT,
                            "%s: the %zu entries declare %llu bytes in all, more than the limit of %llu (16 GiB)",
                            npz->reader.path, npz->count, (unsigned long long)total,
                            (unsigned long long)NPZ_TOTAL_LIMIT);
    return 0;
}

/* Where the entry's data starts: after its local header, whose extra field
 * (np.savez puts a ZIP64 one there) may differ in length from the central
 * one; the data must lie inside the file. Whether the local header names
 * the same entry is only noted: check_overlaps explains the usual cause of
 * a mismatch better. Its sizes and CRC are not used: under the
 * data-descriptor flag they are zeros. */
static int locate_data(const npz_reader *reader, zip_entry *entry) {
    unsigned char header[LOCAL_HEADER_SIZE];
    char what[128], name[sizeof entry->key + sizeof NPY_SUFFIX]; /* check_entry bounds name_length */
    snprintf(what, sizeof what, "the local header of entry %.*s", (int)entry->name_length, entry->name);
    if (read_at(reader, entry->local_offset, header, sizeof header, what)) return -1;
    if (get32(header) != LOCAL_SIGNATURE)
        return entry_error(reader, entry, "no local file header at offset %llu",
                           (unsigned long long)entry->local_offset);
    size_t name_length = get16(header + 26), extra_length = get16(header + 28);
    entry->local_name_matches = name_length == entry->name_length &&
                                fread(name, 1, name_length, reader->file) == name_length &&
                                memcmp(name, entry->name, name_length) == 0;
    entry->data_offset = entry->local_offset + LOCAL_HEADER_SIZE + name_length + extra_length;
    snprintf(what, sizeof what, "the data of entry %.*s", (int)entry->name_length, entry->name);
    return seek_range(reader, entry->data_offset, entry->compressed_size, what);
}

/* Each entry's local header and data must have bytes of their own, before
 * the central directory: entries sharing a local header or a deflate
 * stream are how a small file inflates to gigabytes. (A data descriptor
 * after the data is not counted: it is never read.) */
static int check_overlaps(const nn_npz *npz, const zip_entry **order, uint64_t directory_offset) {
    qsort(order, npz->count, sizeof *order, compare_offsets);
    for (size_t i = 0; i < npz->count; i++) {
        const zip_entry *entry = order[i], *next = i + 1 < npz->count ? order[i + 1] : NULL;
        uint64_t end = entry->data_offset + entry->compressed_size; /* both within the file */
        if (end <= (next ? next->local_offset : directory_offset)) continue;
        if (!next)
            return entry_error(&npz->reader, entry, "its bytes %llu to %llu do not end before the central directory at "
                               "offset %llu",
                               (unsigned long long)entry->local_offset, (unsigned long long)end,
                               (unsigned long long)directory_offset);
        return entry_error(&npz->reader, next,
                           "overlaps entry %s.npy: it starts at offset %llu, inside that entry's bytes %llu to %llu "
                           "(entries must not share bytes: a zip bomb or a damaged archive)",
                           entry->key, (unsigned long long)next->local_offset,
                           (unsigned long long)entry->local_offset, (unsigned long long)end);
    }
    return 0;
}

static int check_layout(nn_npz *npz, uint64_t directory_offset) {
    const zip_entry **order = malloc((npz->count ? npz->count : 1) * sizeof *order);
    if (!order) return nn_error_oom(npz->reader.err, "the zip entry list");
    for (size_t i = 0; i < npz->count; i++) order[i] = &npz->entries[i];
    int status = check_duplicates(npz, order) || check_total(npz);
    for (size_t i = 0; !status && i < npz->count; i++) status = locate_data(&npz->reader, &npz->entries[i]);
    if (!status) status = check_overlaps(npz, order, directory_offset);
    for (size_t i = 0; !status && i < npz->count; i++)
        if (!npz->entries[i].local_name_matches)
            status = entry_error(&npz->reader, &npz->entries[i], "local file header names a different entry");
    free(order);
    return status ? -1 : 0;
}

static int read_directory(nn_npz *npz) {
    npz_reader *reader = &npz->reader;
    uint64_t offset = 0, size = 0;
    size_t count = 0;
    if (read_end_record(reader, &offset, &size, &count)) return -1;
    if (count > size / CENTRAL_HEADER_SIZE)
        return nn_error_set(reader->err, NN_ERR_INPUT,
                            "%s: damaged central directory (%zu entries cannot fit in its %llu bytes)", reader->path,
                            count, (unsigned long long)size);
    /* check_end_record keeps size below the file's. */
    npz->directory = malloc(size ? (size_t)size : 1);
    npz->entries = calloc(count ? count : 1, sizeof *npz->entries);
    if (!npz->directory || !npz->entries) return nn_error_oom(reader->err, "a zip central directory");
    if (read_at(reader, offset, npz->directory, (size_t)size, "the central directory")) return -1;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        size_t used = parse_central_header(reader, npz->directory, (size_t)size, at, &npz->entries[i]);
        if (!used || check_entry(reader, &npz->entries[i])) return -1;
        at += used;
    }
    npz->count = count;
    return check_layout(npz, offset);
}

/* An entry's bytes in order, stored or inflated a piece of input at a time
 * (the compressed bytes are never held whole), with their CRC-32. */
typedef struct entry_stream {
    const npz_reader *reader;
    const zip_entry *entry;
    z_stream zlib;
    int inflating, ended;  /* zlib's state is set up; the deflate stream has ended */
    uint64_t input_left;   /* compressed bytes not yet read */
    uint64_t produced;
    uint32_t crc;
    unsigned char input[1 << 16];
} entry_stream;

static int stream_open(entry_stream *stream, const npz_reader *reader, const zip_entry *entry) {
    memset(&stream->zlib, 0, sizeof stream->zlib);
    stream->reader = reader;
    stream->entry = entry;
    stream->inflating = stream->ended = 0;
    stream->input_left = entry->compressed_size;
    stream->produced = 0;
    stream->crc = (uint32_t)crc32(0, Z_NULL, 0);
    char what[128];
    snprintf(what, sizeof what, "the data of entry %.*s", (int)entry->name_length, entry->name);
    if (seek_range(reader, entry->data_offset, entry->compressed_size, what)) return -1;
    if (entry->method != METHOD_DEFLATED) return 0;
    if (inflateInit2(&stream->zlib, -MAX_WBITS) != Z_OK)
        return nn_error_set(reader->err, NN_ERR_RUNTIME, "%s: cannot start zlib's inflate", reader->path);
    stream->inflating = 1;
    return 0;
}

static void stream_close(entry_stream *stream) {
    if (stream->inflating) inflateEnd(&stream->zlib);
}

/* Inflates into out until it is full or the stream ends; *got is what was
 * produced. */
static int inflate_some(entry_stream *stream, unsigned char *out, size_t length, size_t *got) {
    const npz_reader *reader = stream->reader;
    z_stream *zlib = &stream->zlib;
    zlib->next_out = out;
    zlib->avail_out = (uInt)length; /* check_entry keeps sizes below 4 GiB */
    while (zlib->avail_out > 0 && !stream->ended) {
        if (zlib->avail_in == 0 && stream->input_left > 0) {
            size_t piece = stream->input_left < sizeof stream->input ? (size_t)stream->input_left
                                                                     : sizeof stream->input;
            if (fread(stream->input, 1, piece, reader->file) != piece)
                return entry_error(reader, stream->entry, "cannot read its data: %s", read_problem(reader));
            zlib->next_in = stream->input;
            zlib->avail_in = (uInt)piece;
            stream->input_left -= piece;
        }
        int status = inflate(zlib, Z_NO_FLUSH);
        stream->ended = status == Z_STREAM_END;
        /* No progress with room left: the input has run out. */
        if (status == Z_BUF_ERROR) return entry_error(reader, stream->entry, "truncated deflate data");
        if (status == Z_DATA_ERROR)
            return entry_error(reader, stream->entry, "damaged deflate data (%s)",
                               zlib->msg ? zlib->msg : "zlib data error");
        if (status == Z_MEM_ERROR) return nn_error_oom(reader->err, "zlib's inflate state");
        if (status != Z_OK && status != Z_STREAM_END)
            return entry_error(reader, stream->entry, "inflate failed (zlib status %d)", status);
    }
    *got = length - zlib->avail_out;
    return 0;
}

/* Exactly length more bytes of the entry into out. */
static int stream_read(entry_stream *stream, unsigned char *out, size_t length) {
    const npz_reader *reader = stream->reader;
    size_t got = length;
    if (!stream->inflating) {
        if (length > 0 && fread(out, 1, length, reader->file) != length)
            return entry_error(reader, stream->entry, "cannot read its data: %s", read_problem(reader));
    } else if (inflate_some(stream, out, length, &got)) {
        return -1;
    }
    stream->produced += got;
    stream->crc = crc_update(stream->crc, out, got);
    if (got < length)
        return entry_error(reader, stream->entry, "inflates to %llu bytes, fewer than its declared %llu",
                           (unsigned long long)stream->produced, (unsigned long long)stream->entry->size);
    return 0;
}

/* After the declared bytes the deflate stream must end: one byte more is
 * already too many. Then the CRC must match. */
static int stream_finish(entry_stream *stream) {
    const zip_entry *entry = stream->entry;
    unsigned char extra;
    size_t got = 0;
    if (stream->inflating && inflate_some(stream, &extra, 1, &got)) return -1;
    if (got > 0)
        return entry_error(stream->reader, entry, "inflates to more than its declared %llu bytes",
                           (unsigned long long)entry->size);
    if (stream->crc != entry->crc)
        return nn_error_set(stream->reader->err, NN_ERR_INPUT,
                            "%s: CRC mismatch in entry %.*s (stored %08x, computed %08x)", stream->reader->path,
                            (int)entry->name_length, entry->name, (unsigned)entry->crc, (unsigned)stream->crc);
    return 0;
}

/* The .npy prefix and header text in head, the entry's first head_size
 * bytes, and the data size they promise, which must be what the entry
 * declares. */
static int parse_head(const unsigned char *head, size_t head_size, uint64_t size, npy_header *header,
                      size_t *data_start, nn_error *err) {
    size_t prefix_size = 0;
    uint64_t text_size = 0;
    if (npy_parse_prefix(head, head_size, &prefix_size, &text_size, err)) return -1;
    if (text_size > NPY_TEXT_LIMIT)
        return nn_error_set(err, NN_ERR_INPUT, ".npy header of %llu bytes, more than the %d read (damaged?)",
                            (unsigned long long)text_size, NPY_TEXT_LIMIT);
    if (text_size > head_size - prefix_size)
        return nn_error_set(err, NN_ERR_INPUT, ".npy header of %llu bytes runs past the entry's %llu bytes",
                            (unsigned long long)text_size, (unsigned long long)size);
    if (npy_parse_header((const char *)head + prefix_size, (size_t)text_size, header, err)) return -1;
    *data_start = prefix_size + (size_t)text_size;
    if (header->data_size != size - *data_start) {
        char shape[256];
        npy_format_shape(shape, sizeof shape, header->rank, header->dims);
        return nn_error_set(err, NN_ERR_INPUT, "shape %s of '%s' needs %llu bytes of data, the entry holds %llu",
                            shape, header->descr, (unsigned long long)header->data_size,
                            (unsigned long long)(size - *data_start));
    }
    return 0;
}

/* The entry as an array: the start of its .npy inflated and checked
 * against the declared size before the data is allocated, the rest
 * inflated straight into the array (with_data false: only the start). */
static int read_array(const npz_reader *reader, const zip_entry *entry, bool with_data, nn_array *array) {
    size_t size = (size_t)entry->size, head_limit = NPY_PREFIX_MAX + NPY_TEXT_LIMIT;
    size_t head_size = size < head_limit ? size : head_limit, data_start = 0;
    npy_header header;
    entry_stream stream;
    unsigned char *head = NULL, *data = NULL;
    int status = stream_open(&stream, reader, entry);
    if (!status && !(head = malloc(head_size ? head_size : 1))) status = nn_error_oom(reader->err, "a .npy header");
    if (!status) status = stream_read(&stream, head, head_size);
    if (!status && parse_head(head, head_size, entry->size, &header, &data_start, reader->err))
        status = nn_error_prefix(reader->err, "%s: entry %.*s", reader->path, (int)entry->name_length, entry->name);
    size_t data_size = size - data_start, in_head = head_size - data_start;
    if (!status && with_data && !(data = malloc(data_size ? data_size : 1)))
        status = nn_error_oom(reader->err, "an array");
    if (!status && with_data) {
        memcpy(data, head + data_start, in_head);
        status = stream_read(&stream, data + in_head, data_size - in_head);
        if (!status) status = stream_finish(&stream);
    }
    stream_close(&stream);
    free(head);
    if (status) {
        free(data);
        return -1;
    }
    memcpy(array->name, entry->key, sizeof array->name);
    array->dtype = header.dtype;
    npy_fold_shape(&header, &array->rank, array->dims);
    if (data) npy_to_host(data, array->dtype, data_size / nn_dtype_size(array->dtype));
    array->data = data;
    return 0;
}

/* Opens path as a zip for reading: a regular file, since the end record is
 * searched for from the end. */
static int open_reader(npz_reader *reader, const char *path, nn_error *err) {
    *reader = (npz_reader){.err = err};
    if (!(reader->path = strdup(path))) return nn_error_oom(err, "an .npz reader");
    reader->file = fopen(path, "rb");
    if (!reader->file) return nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fileno(reader->file), &info) != 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(info.st_mode)) return nn_error_set(err, NN_ERR_INPUT, "%s: not a regular file", path);
    reader->file_size = (uint64_t)info.st_size;
    return 0;
}

void nn_npz_close(nn_npz *npz) {
    if (!npz) return;
    if (npz->reader.file) fclose(npz->reader.file);
    free(npz->reader.path);
    free(npz->directory);
    free(npz->entries);
    free(npz);
}

int nn_npz_open(nn_npz **out, const char *path, nn_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return nn_error_oom(err, "an .npz reader");
    if (open_reader(&(*out)->reader, path, err) || read_directory(*out)) {
        nn_npz_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

size_t nn_npz_count(const nn_npz *npz) { return npz->count; }

const char *nn_npz_key(const nn_npz *npz, size_t index) { return index < npz->count ? npz->entries[index].key : NULL; }

bool nn_npz_find(const nn_npz *npz, const char *key, size_t *index) {
    size_t key_length = strlen(key);
    for (size_t i = 0; i < npz->count; i++) {
        const zip_entry *entry = &npz->entries[i];
        if (strcmp(entry->key, key) == 0 ||
            (key_length == entry->name_length && memcmp(entry->name, key, key_length) == 0)) {
            *index = i;
            return true;
        }
    }
    return false;
}

static int read_indexed(nn_npz *npz, size_t index, bool with_data, nn_array *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    npz->reader.err = err;
    if (index >= npz->count)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: no entry %zu (the archive holds %zu)", npz->reader.path, index,
                            npz->count);
    int status = read_array(&npz->reader, &npz->entries[index], with_data, out);
    if (status) memset(out, 0, sizeof *out);
    return status;
}

int nn_npz_read_header(nn_npz *npz, size_t index, nn_array *out, nn_error *err) {
    return read_indexed(npz, index, false, out, err);
}

int nn_npz_read_entry(nn_npz *npz, size_t index, nn_array *out, nn_error *err) {
    return read_indexed(npz, index, true, out, err);
}

int nn_npz_read(const char *path, nn_array **arrays, size_t *count, nn_error *err) {
    *arrays = NULL;
    *count = 0;
    nn_npz *npz;
    if (nn_npz_open(&npz, path, err)) return -1;
    nn_array *list = npz->count ? calloc(npz->count, sizeof *list) : NULL;
    int status = npz->count && !list ? nn_error_oom(err, "the list of arrays") : 0;
    size_t done = 0;
    for (; !status && done < npz->count; done++) status = nn_npz_read_entry(npz, done, &list[done], err);
    nn_npz_close(npz);
    if (status) {
        nn_arrays_free(list, done);
        return -1;
    }
    *arrays = list;
    *count = done;
    return 0;
}

/* "'a', 'b', 'c'": the keys, for messages (cut short with "..." when there
 * are too many to fit). */
static void list_keys(char *buffer, size_t size, const nn_npz *npz) {
    size_t used = 0;
    buffer[0] = '\0';
    for (size_t i = 0; i < npz->count; i++) {
        int length = snprintf(buffer + used, size - used, "%s'%s'", i ? ", " : "", npz->entries[i].key);
        if (length < 0 || (size_t)length >= size - used - 4) {
            snprintf(buffer + used, size - used, "%s...", i ? ", " : "");
            return;
        }
        used += (size_t)length;
    }
}

/* The entry that key names, or (key NULL) the only one. */
static int pick_entry(const nn_npz *npz, const char *key, size_t *index, nn_error *err) {
    const char *path = npz->reader.path;
    char keys[600];
    list_keys(keys, sizeof keys, npz);
    if (key && nn_npz_find(npz, key, index)) return 0;
    if (key && npz->count == 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: no array '%s': the archive holds no arrays", path, key);
    if (key) return nn_error_set(err, NN_ERR_INPUT, "%s: no array '%s'; the archive holds %s", path, key, keys);
    *index = 0;
    if (npz->count == 1) return 0;
    if (npz->count == 0) return nn_error_set(err, NN_ERR_INPUT, "%s: the archive holds no arrays, expected one", path);
    return nn_error_set(err, NN_ERR_INPUT, "%s: the archive holds %zu arrays (%s): name the one to read", path,
                        npz->count, keys);
}

int nn_npz_read_key(const char *path, const char *key, nn_array *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    nn_npz *npz;
    if (nn_npz_open(&npz, path, err)) return -1;
    size_t index = 0;
    int status = pick_entry(npz, key, &index, err);
    if (!status) status = nn_npz_read_entry(npz, index, out, err);
    nn_npz_close(npz);
    return status;
}

/* ------------------------------------------------------------- zip writer */

typedef struct npz_writer {
    const char *path; /* the destination, for messages */
    FILE *file;       /* the temporary file */
    uint64_t offset;  /* bytes written so far */
    nn_error *err;
} npz_writer;

/* What the central directory repeats about an entry already written. */
typedef struct written_entry {
    uint32_t crc, compressed_size, size, local_offset;
} written_entry;

static int write_failed(const npz_writer *writer, const char *what) {
    return nn_error_set(writer->err, NN_ERR_RUNTIME, "%s: cannot write %s: %s", writer->path, what,
                        errno ? strerror(errno) : "I/O error");
}

static int write_bytes(npz_writer *writer, const void *data, size_t length) {
    errno = 0;
    if (length > 0 && fwrite(data, 1, length, writer->file) != length) return write_failed(writer, "the file");
    writer->offset += length;
    if (writer->offset >= ZIP32_LIMIT)
        return nn_error_set(writer->err, NN_ERR_RUNTIME, "%s: archive would exceed 4 GiB (ZIP64 is not supported)",
                            writer->path);
    return 0;
}

/* The .npy version 1.0 header byte for byte as numpy's format.write_array
 * writes it: sorted dict keys, spare spaces for growing the first axis, then
 * spaces and a newline so that the data starts at a multiple of 64. */
size_t nn_npy_encode_header(unsigned char *out, const nn_array *array) {
    char shape[NN_MAX_RANK * 24 + 8], dict[sizeof shape + 64];
    npy_format_shape(shape, sizeof shape, array->rank, array->dims);
    size_t dict_length = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                                          dtype_descr(array->dtype), shape);
    int first_digits = array->rank > 0 ? snprintf(NULL, 0, "%lld", (long long)array->dims[0]) : NPY_GROWTH_DIGITS;
    size_t growth = (size_t)(NPY_GROWTH_DIGITS - first_digits);
    size_t text_length = dict_length + growth + 1;
    size_t padding = NPY_ALIGN - (NPY_PREFIX_V1 + text_length) % NPY_ALIGN;
    memcpy(out, npy_magic, sizeof npy_magic);
    out[6] = 1;
    out[7] = 0;
    put16(out + 8, (uint32_t)(text_length + padding));
    memcpy(out + NPY_PREFIX_V1, dict, dict_length);
    memset(out + NPY_PREFIX_V1 + dict_length, ' ', growth + padding);
    out[NPY_PREFIX_V1 + text_length + padding - 1] = '\n';
    return NPY_PREFIX_V1 + text_length + padding;
}

/* Compresses length bytes into the file, adding them to crc. */
static int deflate_feed(npz_writer *writer, z_stream *stream, const unsigned char *input, size_t length, int finish,
                        uint32_t *crc) {
    unsigned char out[1 << 14];
    do {
        size_t piece = length < ZLIB_PIECE ? length : ZLIB_PIECE;
        *crc = crc_update(*crc, input, piece);
        stream->next_in = input;
        stream->avail_in = (uInt)piece;
        input += piece;
        length -= piece;
        int flush = finish && length == 0 ? Z_FINISH : Z_NO_FLUSH, status;
        do {
            stream->next_out = out;
            stream->avail_out = sizeof out;
            status = deflate(stream, flush);
            if (status == Z_STREAM_ERROR)
                return nn_error_set(writer->err, NN_ERR_RUNTIME, "%s: zlib's deflate failed", writer->path);
            if (write_bytes(writer, out, sizeof out - stream->avail_out)) return -1;
        } while (flush == Z_FINISH ? status != Z_STREAM_END : stream->avail_out == 0);
    } while (length > 0);
    return 0;
}

static int deflate_entry(npz_writer *writer, const unsigned char *header, size_t header_size, const nn_array *array,
                         written_entry *record) {
    z_stream stream = {0};
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return nn_error_set(writer->err, NN_ERR_RUNTIME, "%s: cannot start zlib's deflate", writer->path);
    uint64_t start = writer->offset;
    uint32_t crc = (uint32_t)crc32(0, Z_NULL, 0);
    int status = deflate_feed(writer, &stream, header, header_size, 0, &crc);
    if (!status) status = deflate_feed(writer, &stream, array->data, nn_array_bytes(array), 1, &crc);
    deflateEnd(&stream);
    record->crc = crc;
    record->compressed_size = (uint32_t)(writer->offset - start);
    return status;
}

/* The fields from "version needed" to "extra field length", which a local
 * header holds at offset 4 and a central directory header at offset 6. */
static void fill_common_fields(unsigned char *out, const char *key, const written_entry *record, size_t name_length) {
    unsigned flags = 0;
    for (const unsigned char *c = (const unsigned char *)key; *c; c++)
        if (*c >= 0x80) flags = FLAG_UTF8_NAME;
    memset(out, 0, 26);
    put16(out, ZIP_VERSION);
    put16(out + 2, flags);
    put16(out + 4, METHOD_DEFLATED);
    put16(out + 8, DOS_DATE_1980);
    put32(out + 10, record->crc);
    put32(out + 14, record->compressed_size);
    put32(out + 18, record->size);
    put16(out + 22, (uint32_t)name_length);
}

static void fill_local_header(unsigned char *out, const char *key, const written_entry *record, size_t name_length) {
    put32(out, LOCAL_SIGNATURE);
    fill_common_fields(out + 4, key, record, name_length);
}

/* Local header (CRC and compressed size patched in once known, so that no
 * data descriptor is needed), then the deflated .npy. */
static int write_entry(npz_writer *writer, const nn_array *array, written_entry *record) {
    unsigned char npy[NN_NPY_HEADER_MAX], local[LOCAL_HEADER_SIZE];
    char name[sizeof array->name + sizeof NPY_SUFFIX];
    size_t header_size = nn_npy_encode_header(npy, array);
    size_t name_length = (size_t)snprintf(name, sizeof name, "%s%s", array->name, NPY_SUFFIX);
    *record = (written_entry){.local_offset = (uint32_t)writer->offset,
                              .size = (uint32_t)(header_size + nn_array_bytes(array))};
    fill_local_header(local, array->name, record, name_length);
    if (write_bytes(writer, local, sizeof local) || write_bytes(writer, name, name_length) ||
        deflate_entry(writer, npy, header_size, array, record))
        return -1;
    fill_local_header(local, array->name, record, name_length);
    errno = 0;
    if (fseeko(writer->file, (off_t)record->local_offset, SEEK_SET) != 0 ||
        fwrite(local, 1, sizeof local, writer->file) != sizeof local || fseeko(writer->file, 0, SEEK_END) != 0)
        return write_failed(writer, "a local file header");
    return 0;
}

static int write_directory(npz_writer *writer, const nn_array *arrays, const written_entry *records, size_t count) {
    uint64_t directory_offset = writer->offset;
    for (size_t i = 0; i < count; i++) {
        unsigned char header[CENTRAL_HEADER_SIZE] = {0};
        char name[sizeof arrays[i].name + sizeof NPY_SUFFIX];
        size_t name_length = (size_t)snprintf(name, sizeof name, "%s%s", arrays[i].name, NPY_SUFFIX);
        put32(header, CENTRAL_SIGNATURE);
        put16(header + 4, VERSION_MADE_BY_UNIX);
        fill_common_fields(header + 6, arrays[i].name, &records[i], name_length);
        put32(header + 38, (uint32_t)0100644 << 16); /* external attributes: a regular file, rw-r--r-- */
        put32(header + 42, records[i].local_offset);
        if (write_bytes(writer, header, sizeof header) || write_bytes(writer, name, name_length)) return -1;
    }
    unsigned char end[END_RECORD_SIZE] = {0};
    put32(end, END_SIGNATURE);
    put16(end + 8, (uint32_t)count);
    put16(end + 10, (uint32_t)count);
    put32(end + 12, (uint32_t)(writer->offset - directory_offset));
    put32(end + 16, (uint32_t)directory_offset);
    return write_bytes(writer, end, sizeof end);
}

static int check_array(const char *path, const nn_array *array, size_t index, nn_error *err) {
    if (!memchr(array->name, '\0', sizeof array->name) || array->name[0] == '\0')
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: array %zu has an empty or unterminated name", path, index);
    if (!dtype_descr(array->dtype))
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: array '%s' has unknown dtype %d", path, array->name,
                            (int)array->dtype);
    if (array->rank < 0 || array->rank > NN_MAX_RANK)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: array '%s' has rank %d (expected 0 to %d)", path, array->name,
                            array->rank, NN_MAX_RANK);
    uint64_t bytes = nn_dtype_size(array->dtype);
    for (int i = 0; i < array->rank; i++) {
        if (array->dims[i] < 0)
            return nn_error_set(err, NN_ERR_RUNTIME, "%s: array '%s' has negative dimension %lld", path,
                                array->name, (long long)array->dims[i]);
        uint64_t dim = (uint64_t)array->dims[i];
        bytes = dim != 0 && bytes > ZIP32_LIMIT / dim ? ZIP32_LIMIT : bytes * dim;
    }
    /* The .npy header is at most five blocks of NPY_ALIGN bytes. */
    if (bytes >= ZIP32_LIMIT - NPY_ALIGN * 5)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: array '%s' is 4 GiB or more (ZIP64 is not supported)", path,
                            array->name);
    if (bytes > 0 && !array->data)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: array '%s' has no data", path, array->name);
    return 0;
}

static int check_arrays(const char *path, const nn_array *arrays, size_t count, nn_error *err) {
    if (count >= ENTRY_COUNT_LIMIT)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: %zu arrays, more than a zip without ZIP64 holds", path, count);
    for (size_t i = 0; i < count; i++) {
        if (check_array(path, &arrays[i], i, err)) return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(arrays[i].name, arrays[j].name) == 0)
                return nn_error_set(err, NN_ERR_RUNTIME, "%s: duplicate key '%s' (arrays %zu and %zu)", path,
                                    arrays[i].name, j, i);
    }
    return 0;
}

static int write_archive(npz_writer *writer, const nn_array *arrays, size_t count) {
    written_entry *records = calloc(count ? count : 1, sizeof *records);
    if (!records) return nn_error_oom(writer->err, "the zip central directory");
    int status = 0;
    for (size_t i = 0; !status && i < count; i++) status = write_entry(writer, &arrays[i], &records[i]);
    if (!status) status = write_directory(writer, arrays, records, count);
    free(records);
    return status ? -1 : 0;
}

int nn_npz_write(const char *path, const nn_array *arrays, size_t count, nn_error *err) {
    if (check_arrays(path, arrays, count, err)) return -1;
    nn_atomic_file atomic;
    if (nn_atomic_open(&atomic, path, err) != 0) return -1;
    npz_writer writer = {.path = path, .file = atomic.file, .err = err};
    if (write_archive(&writer, arrays, count) != 0) {
        nn_atomic_abort(&atomic);
        return -1;
    }
    return nn_atomic_commit(&atomic, err);
}
