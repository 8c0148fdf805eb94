/* CSV tables of numbers. The input goes through zlib's gz* functions,
 * which pass content that is not gzip through unchanged, so a file is
 * recognised by its first two bytes (0x1f 0x8b), never by its name. Lines
 * are cut out of one buffer that holds a chunk of the input (and grows
 * only for a line longer than a chunk, up to NN_CSV_LINE_LIMIT), and each
 * row is parsed in one pass straight into its place in the output: a
 * number is scanned where it stands, the cell ends where the number does,
 * and only a cell that is not a plain number (quoted, empty, text) goes
 * the slow way through the tokenizer, which also makes the messages. */
#include "data/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/file_kind.h"
#include "io/gz_input.h"

/* What one gzread asks for; the buffer starts this big. */
#define READ_CHUNK ((size_t)1 << 20)
/* Rows that nn_csv_read allocates first; it doubles from there. */
#define FIRST_ROWS 1024
/* Header names listed in a message before "and N more". */
#define NAMES_IN_MESSAGE 8
/* Bytes of a cell or a name quoted in a message. */
#define QUOTED_IN_MESSAGE 40
/* Saturates a written exponent far beyond any double's range and far from
 * int64 overflow, whatever the number of fraction digits beside it. */
#define EXPONENT_CLAMP INT64_C(1000000000000000)
/* A point halfway between two doubles, where rounding is decided, has
 * fewer than 770 significant digits, so past the 800th a digit only
 * matters by being nonzero: 800 kept and one sticky '1' for a nonzero
 * dropped round as the whole number would. */
#define KEPT_DIGITS 800

/* A column's slot in a row: a feature (>= 0, its index among the
 * features), a target (<= -2: target -(slot + 2)) or not read. */
#define SLOT_SKIP (-1)
#define TARGET_SLOT(index) (-(int32_t)(index) - 2)

/* The input, line by line: buffer[start, end) is read and not yet handed
 * out, and holds no newline before scan. */
typedef struct csv_input {
    gzFile file;
    char *buffer;
    size_t capacity, start, scan, end;
    bool at_end;
    bool read_failed;  /* zlib or the system reported an error */
    bool regular_file; /* can be read to its end after an error (not a pipe) */
    int64_t line; /* the number of the line last handed out (1-based) */
} csv_input;

/* What opening learnt about the table, and the state of the rows. */
typedef struct csv_reader {
    csv_input input;
    char *name;            /* owned: the path, or "<stdin>" */
    char delimiter;        /* 0: runs of spaces and tabs */
    int columns;
    int feature_count, target_count;
    int32_t *slots;        /* columns entries */
    char *names;           /* header names, each NUL-terminated; NULL without header */
    size_t *name_offsets;  /* columns entries */
    int64_t header_line;   /* 0 without header */
    int64_t first_line;    /* the first data row */
    int64_t blank_line;    /* the first blank line after the header (0: none yet) */
    const char *pending;   /* the first data row, read ahead at open and not yet parsed */
    size_t pending_length;
} csv_reader;

struct nn_csv_stream {
    csv_reader reader;
    double *row;           /* one row of features as parsed, before float32 */
    bool row_ready;        /* row holds the first row, parsed at open and not yet handed out */
    bool ended, failed;
    nn_error failure;      /* repeated by every read after a failure */
};

/* ---- numbers ---- */

typedef enum number_status { NUMBER_OK, NUMBER_SYNTAX, NUMBER_RANGE } number_status;

static const double powers_of_ten[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline bool is_digit(char c) { return (unsigned char)(c - '0') < 10; }

/* Spaces and tabs around a cell, except the delimiter itself (a tab). */
static inline bool is_blank(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

/* The digits digits..digits_end (one '.' among them) times 10^exponent,
 * rounded correctly by strtod. strtod is handed "DDDDe-N": digits and an
 * exponent, with no decimal point. C lets a locale change the decimal
 * point and accept extra forms of its own, but not what digits and an
 * exponent mean, so this reads the same in every locale, with no
 * localeconv() and nothing another thread's setlocale can upset. glibc's
 * and musl's strtod round correctly. */
static number_status slow_decimal(const char *digits, const char *digits_end, int64_t exponent, bool negative,
                                  double *value) {
    char text[KEPT_DIGITS + 32];
    size_t kept = 0;
    int64_t shift = exponent;
    bool after_point = false, dropped_nonzero = false;
    for (const char *p = digits; p < digits_end; p++) {
        if (*p == '.') {
            after_point = true;
        } else if (kept == 0 && *p == '0') {
            if (after_point) shift--; /* a leading zero only moves the point */
        } else if (kept < KEPT_DIGITS) {
            text[kept++] = *p;
            if (after_point) shift--;
        } else {
            dropped_nonzero |= *p != '0';
            if (!after_point) shift++;
        }
    }
    if (kept == 0) {
        *value = negative ? -0.0 : 0.0;
        return NUMBER_OK;
    }
    if (dropped_nonzero) {
        text[kept++] = '1';
        shift--;
    }
    while (text[kept - 1] == '0') kept--, shift++;
    /* The value is in [10^leading, 10^(leading + 1)): beyond 1e309 nothing
     * is finite, below 1e-400 everything rounds to zero. */
    int64_t leading = (int64_t)kept - 1 + shift;
    if (leading >= 309) return NUMBER_RANGE;
    if (leading < -400) {
        *value = negative ? -0.0 : 0.0;
        return NUMBER_OK;
    }
    snprintf(text + kept, sizeof text - kept, "e%lld", (long long)shift);
    double result = strtod(text, NULL);
    if (isinf(result)) return NUMBER_RANGE;
    *value = negative ? -result : result;
    return NUMBER_OK;
}

/* Scans the longest prefix of [p, end) of the form
 * [+-]digits[.digits][(e|E)[+-]digits] (".5" and "5." included) and
 * returns where it stops (p itself when there are no digits: *status is
 * NUMBER_SYNTAX). An 'e' without digits after it is not part of the
 * number: the caller sees it as text after one. */
static const char *scan_number(const char *p, const char *end, double *value, number_status *status) {
    const char *start = p;
    bool negative = false;
    if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';
    const char *digits = p;
    while (p < end && *p == '0') p++;
    const char *significant = p;
    uint64_t mantissa = 0;
    while (p < end && is_digit(*p)) mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
    int64_t significant_digits = p - significant, fraction_digits = 0;
    bool any_digit = p > digits;
    if (p < end && *p == '.') {
        const char *fraction = ++p;
        if (significant_digits == 0)
            while (p < end && *p == '0') p++;
        const char *fraction_significant = p;
        while (p < end && is_digit(*p)) mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
        significant_digits += p - fraction_significant;
        fraction_digits = p - fraction;
        any_digit |= fraction_digits > 0;
    }
    if (!any_digit) {
        *status = NUMBER_SYNTAX;
        return start;
    }
    const char *digits_end = p;
    int64_t exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        bool exponent_negative = false;
        if (q < end && (*q == '+' || *q == '-')) exponent_negative = *q++ == '-';
        if (q < end && is_digit(*q)) {
            for (; q < end && is_digit(*q); q++)
                if (exponent < EXPONENT_CLAMP) exponent = exponent * 10 + (*q - '0');
            if (exponent_negative) exponent = -exponent;
            p = q;
        }
    }
    *status = NUMBER_OK;
#if FLT_EVAL_METHOD == 0
    /* Clinger's fast path: a mantissa of at most 2^53 and a power of ten
     * of at most 10^22 are both exact doubles, so one multiplication or
     * division, rounded once, is the correctly rounded value. Excess
     * exponent moves into the mantissa while that stays exact (1e23 is
     * 10 * 1e22). Needs arithmetic in double, not x87 extended. */
    if (significant_digits <= 19) {
        if (mantissa == 0) {
            *value = negative ? -0.0 : 0.0;
            return p;
        }
        int64_t shift = exponent - fraction_digits;
        while (shift > 22 && mantissa < (UINT64_C(1) << 53) / 10) mantissa *= 10, shift--;
        if (mantissa <= UINT64_C(1) << 53 && shift >= -22 && shift <= 22) {
            double m = (double)mantissa;
            double result = shift < 0 ? m / powers_of_ten[-shift] : m * powers_of_ten[shift];
            *value = negative ? -result : result;
            return p;
        }
    }
#endif
    *status = slow_decimal(digits, digits_end, exponent, negative, value);
    return p;
}

int nn_csv_parse_number(const char *text, size_t length, double *value) {
    number_status status;
    double result;
    const char *stop = scan_number(text, text + length, &result, &status);
    if (status != NUMBER_OK || stop != text + length) return -1;
    *value = result;
    return 0;
}

/* Case-insensitive [+-](nan|inf|infinity), and nan(...) as strtod reads it,
 * so that the message can say why such a cell is refused. */
static bool is_nan_or_inf(const char *text, size_t length) {
    if (length && (*text == '+' || *text == '-')) text++, length--;
    char lower[9];
    size_t n = length < 8 ? length : 8;
    for (size_t i = 0; i < n; i++) lower[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] + 32 : text[i]);
    lower[n] = '\0';
    if (length == 3 && (!strcmp(lower, "nan") || !strcmp(lower, "inf"))) return true;
    if (length == 8 && !strcmp(lower, "infinity")) return true;
    return length >= 5 && !strncmp(lower, "nan(", 4) && text[length - 1] == ')';
}

/* ---- text for messages ---- */

/* 'text' with control bytes as \xNN, cut at QUOTED_IN_MESSAGE bytes. */
static const char *quote_text(char *buffer, size_t size, const char *text, size_t length) {
    size_t used = 0;
    buffer[used++] = '\'';
    for (size_t i = 0; i < length && i < QUOTED_IN_MESSAGE && used + 8 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            used += (size_t)snprintf(buffer + used, size - used, "\\x%02x", c);
        else
            buffer[used++] = (char)c;
    }
    buffer[used++] = '\'';
    buffer[used] = '\0';
    if (length > QUOTED_IN_MESSAGE && used + 16 < size)
        snprintf(buffer + used, size - used, " (%zu bytes)", length);
    return buffer;
}

static const char *column_name(const csv_reader *reader, int column) {
    return reader->names + reader->name_offsets[column];
}

/* "column 3 ('petal_length')", or "column 3" without a header (or past
 * its last name, in a row with too many cells): 1-based. */
static const char *describe_column(const csv_reader *reader, int column, char *buffer, size_t size) {
    if (!reader->names || column >= reader->columns) {
        snprintf(buffer, size, "column %d", column + 1);
        return buffer;
    }
    char name[QUOTED_IN_MESSAGE * 4 + 32];
    const char *text = column_name(reader, column);
    snprintf(buffer, size, "column %d (%s)", column + 1, quote_text(name, sizeof name, text, strlen(text)));
    return buffer;
}

static const char *describe_delimiter(char delimiter, char *buffer, size_t size) {
    if (delimiter == '\t')
        snprintf(buffer, size, "a tab");
    else
        snprintf(buffer, size, "the delimiter '%c'", delimiter);
    return buffer;
}

/* ---- reading lines ---- */

static int report_read_error(const csv_reader *reader, nn_error *err) {
    int saved_errno = errno, zlib_status;
    const char *text = gzerror(reader->input.file, &zlib_status);
    long long line = (long long)reader->input.line + 1;
    if (zlib_status == Z_ERRNO)
        return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: read failed: %s", reader->name, line,
                            strerror(saved_errno));
    if (zlib_status == Z_BUF_ERROR)
        return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: truncated: the gzip stream ends unexpectedly",
                            reader->name, line);
    return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: damaged gzip data: %s", reader->name, line, text);
}

/* Moves what is unread to the front, grows the buffer when that fills
 * it, and reads what fits. */
static int fill(csv_reader *reader, nn_error *err) {
    csv_input *in = &reader->input;
    if (in->start > 0) {
        memmove(in->buffer, in->buffer + in->start, in->end - in->start);
        in->end -= in->start;
        in->scan -= in->start;
        in->start = 0;
    }
    if (in->end == in->capacity) {
        size_t capacity = in->capacity ? in->capacity * 2 : READ_CHUNK;
        if (capacity > NN_CSV_LINE_LIMIT + READ_CHUNK) capacity = NN_CSV_LINE_LIMIT + READ_CHUNK;
        char *grown = realloc(in->buffer, capacity);
        if (!grown) return nn_error_oom(err, "a CSV line");
        in->buffer = grown;
        in->capacity = capacity;
    }
    int got = gzread(in->file, in->buffer + in->end, (unsigned)(in->capacity - in->end));
    if (got < 0 || (got == 0 && !nn_gz_clean_end(in->file))) {
        in->read_failed = true;
        return report_read_error(reader, err);
    }
    if (got == 0) in->at_end = true;
    in->end += (size_t)got;
    return 0;
}

static int line_too_long(const csv_reader *reader, nn_error *err) {
    return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: line longer than the limit of %d MiB", reader->name,
                        (long long)reader->input.line + 1, (int)(NN_CSV_LINE_LIMIT >> 20));
}

/* The next line without its \n or \r\n: 1, or 0 at the end of the input,
 * or -1 with err set. The text stays valid until the next call. */
static int read_line(csv_reader *reader, const char **text, size_t *length, nn_error *err) {
    csv_input *in = &reader->input;
    for (;;) {
        char *newline = memchr(in->buffer + in->scan, '\n', in->end - in->scan);
        if (newline || (in->at_end && in->start < in->end)) {
            size_t stop = newline ? (size_t)(newline - in->buffer) : in->end;
            size_t size = stop - in->start;
            const char *line = in->buffer + in->start;
            if (size && line[size - 1] == '\r') size--;
            if (size > NN_CSV_LINE_LIMIT) return line_too_long(reader, err);
            in->start = in->scan = newline ? stop + 1 : stop;
            in->line++;
            *text = line;
            *length = size;
            return 1;
        }
        if (in->at_end) return 0;
        in->scan = in->end;
        if (in->end - in->start > NN_CSV_LINE_LIMIT + 1) return line_too_long(reader, err);
        if (fill(reader, err) < 0) return -1;
    }
}

/* ---- cells ---- */

typedef enum cell_status { CELL_OK, CELL_UNCLOSED_QUOTE, CELL_TEXT_AFTER_QUOTE } cell_status;

typedef struct csv_cell {
    const char *text; /* without the quotes; "" inside them not yet undone */
    size_t length;
    bool quoted;
} csv_cell;

/* The cell that starts at p (blanks before it included): its text, and in
 * *next where the next cell starts, NULL when the line ends with this one.
 * In whitespace mode p must not be at the end after the blanks. */
static cell_status next_cell(char delimiter, const char *p, const char *end, csv_cell *cell, const char **next) {
    while (p < end && is_blank(*p, delimiter)) p++;
    cell->quoted = p < end && *p == '"';
    if (cell->quoted) {
        const char *close = p + 1;
        for (;;) {
            close = memchr(close, '"', (size_t)(end - close));
            if (!close) return CELL_UNCLOSED_QUOTE;
            if (close + 1 < end && close[1] == '"') {
                close += 2;
                continue;
            }
            break;
        }
        cell->text = p + 1;
        cell->length = (size_t)(close - p - 1);
        p = close + 1;
        if (!delimiter && p < end && !is_blank(*p, delimiter)) return CELL_TEXT_AFTER_QUOTE;
        while (p < end && is_blank(*p, delimiter)) p++;
        if (p == end)
            *next = NULL;
        else if (!delimiter)
            *next = p;
        else if (*p == delimiter)
            *next = p + 1;
        else
            return CELL_TEXT_AFTER_QUOTE;
        return CELL_OK;
    }
    const char *stop;
    if (delimiter) {
        stop = memchr(p, delimiter, (size_t)(end - p));
        *next = stop ? stop + 1 : NULL;
        if (!stop) stop = end;
    } else {
        stop = p;
        while (stop < end && !is_blank(*stop, delimiter)) stop++;
        const char *after = stop;
        while (after < end && is_blank(*after, delimiter)) after++;
        *next = after == end ? NULL : after;
    }
    while (stop > p && is_blank(stop[-1], delimiter)) stop--;
    cell->text = p;
    cell->length = (size_t)(stop - p);
    return CELL_OK;
}

static int cell_error(const csv_reader *reader, int column, cell_status status, nn_error *err) {
    char where[QUOTED_IN_MESSAGE * 4 + 64], delimiter[32];
    describe_column(reader, column, where, sizeof where);
    long long line = (long long)reader->input.line;
    if (status == CELL_UNCLOSED_QUOTE)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s:%lld: %s: the quote that opens the cell is not closed on this line "
                            "(a quoted cell cannot span lines)",
                            reader->name, line, where);
    if (!reader->delimiter)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s:%lld: %s: text after the closing quote, expected a space, a tab or the end "
                            "of the line",
                            reader->name, line, where);
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s:%lld: %s: text after the closing quote, expected %s or the end of the line",
                        reader->name, line, where, describe_delimiter(reader->delimiter, delimiter, sizeof delimiter));
}

/* Counts the cells of a line, stopping past NN_CSV_COLUMN_LIMIT;
 * first_column is the number of cells before p (for messages). */
static int count_cells(const csv_reader *reader, const char *p, const char *end, int first_column, int *count,
                       nn_error *err) {
    int cells = 0;
    while (p) {
        csv_cell cell;
        cell_status status = next_cell(reader->delimiter, p, end, &cell, &p);
        if (status != CELL_OK) return cell_error(reader, first_column + cells, status, err);
        if (++cells + first_column > NN_CSV_COLUMN_LIMIT) break;
    }
    *count = cells;
    return 0;
}

static bool is_blank_line(const char *text, size_t length, char delimiter) {
    for (size_t i = 0; i < length; i++)
        if (!is_blank(text[i], delimiter)) return false;
    return true;
}

/* ---- rows ---- */

static int ragged_row(const csv_reader *reader, int cells, bool more, nn_error *err) {
    const char *what = reader->names ? "the header" : "the first row";
    long long line = (long long)(reader->names ? reader->header_line : reader->first_line);
    return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: the row has %s%d cells but %s (line %lld) has %d",
                        reader->name, (long long)reader->input.line, more ? "more than " : "", cells, what,
                        line, reader->columns);
}

/* A row with cells beyond the last column, starting at p. */
static int too_many_cells(const csv_reader *reader, const char *p, const char *end, nn_error *err) {
    int rest = 0;
    if (count_cells(reader, p, end, reader->columns, &rest, err) < 0) return -1;
    int cells = reader->columns + rest;
    return ragged_row(reader, cells, cells > NN_CSV_COLUMN_LIMIT, err);
}

/* The slow way for a selected cell the fast path did not take: quoted,
 * empty, text, out of range, or followed by something else. */
static int cell_value(const csv_reader *reader, int column, const char *p, const char *end, double *value,
                      const char **next, nn_error *err) {
    csv_cell cell;
    cell_status status = next_cell(reader->delimiter, p, end, &cell, next);
    if (status != CELL_OK) return cell_error(reader, column, status, err);
    const char *text = cell.text;
    size_t length = cell.length;
    if (cell.quoted) {
        while (length && is_blank(*text, 0)) text++, length--;
        while (length && is_blank(text[length - 1], 0)) length--;
    }
    char where[QUOTED_IN_MESSAGE * 4 + 64], got[QUOTED_IN_MESSAGE * 4 + 32];
    describe_column(reader, column, where, sizeof where);
    long long line = (long long)reader->input.line;
    if (length == 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: %s: empty cell, expected a number", reader->name, line,
                            where);
    number_status number;
    const char *stop = scan_number(text, text + length, value, &number);
    if (stop == text + length && number == NUMBER_OK) return 0;
    quote_text(got, sizeof got, text, length);
    if (stop == text + length && number == NUMBER_RANGE)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s:%lld: %s: %s is out of range: beyond the largest double (about 1.8e308)",
                            reader->name, line, where, got);
    if (is_nan_or_inf(text, length))
        return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: %s: got %s: NaN and Inf are not allowed in data",
                            reader->name, line, where, got);
    return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: %s: expected a number, got %s", reader->name, line, where,
                        got);
}

/* Whether the cell ends at p (blanks, then the delimiter or the end of the
 * line); *next as next_cell gives it. */
static inline bool cell_ends(char delimiter, const char *p, const char *end, const char **next) {
    if (delimiter) {
        while (p < end && is_blank(*p, delimiter)) p++;
        if (p == end) {
            *next = NULL;
            return true;
        }
        *next = p + 1;
        return *p == delimiter;
    }
    if (p < end && !is_blank(*p, 0)) return false;
    while (p < end && is_blank(*p, 0)) p++;
    *next = p == end ? NULL : p;
    return true;
}

/* Parses one row into its features and targets (either NULL when there
 * are none). */
static int parse_row(const csv_reader *reader, const char *text, size_t length, double *features, double *targets,
                     nn_error *err) {
    const char *p = text, *end = text + length;
    const char delimiter = reader->delimiter;
    const int columns = reader->columns;
    const int32_t *slots = reader->slots;
    for (int column = 0;; column++) {
        const char *next;
        int32_t slot = slots[column];
        if (slot == SLOT_SKIP) {
            csv_cell cell;
            cell_status status = next_cell(delimiter, p, end, &cell, &next);
            if (status != CELL_OK) return cell_error(reader, column, status, err);
        } else {
            while (p < end && is_blank(*p, delimiter)) p++;
            double value;
            number_status status;
            const char *stop = scan_number(p, end, &value, &status);
            if ((status != NUMBER_OK || !cell_ends(delimiter, stop, end, &next)) &&
                cell_value(reader, column, p, end, &value, &next, err) < 0)
                return -1;
            if (slot >= 0)
                features[slot] = value;
            else
                targets[-slot - 2] = value;
        }
        if (!next) return column + 1 == columns ? 0 : ragged_row(reader, column + 1, false, err);
        if (column + 1 == columns) return too_many_cells(reader, next, end, err);
        p = next;
    }
}

/* The next data row: 1, or 0 at the end, or -1 with err set. Blank lines
 * end the rows: one followed by another row is an error. */
static int next_row(csv_reader *reader, const char **text, size_t *length, nn_error *err) {
    if (reader->pending) {
        *text = reader->pending;
        *length = reader->pending_length;
        reader->pending = NULL;
        return 1;
    }
    for (;;) {
        int got = read_line(reader, text, length, err);
        if (got <= 0) return got;
        if (is_blank_line(*text, *length, reader->delimiter)) {
            if (!reader->blank_line) reader->blank_line = reader->input.line;
            continue;
        }
        if (reader->blank_line)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s:%lld: blank line before more rows (line %lld): blank lines are allowed only "
                                "after the last row",
                                reader->name, (long long)reader->blank_line, (long long)reader->input.line);
        return 1;
    }
}

/* Damaged gzip data can inflate to text that fails as a row before zlib
 * notices (the CRC is checked at the end), and the message would then
 * blame the row. So after a failed row of a gzip file the rest is read,
 * and damage found there is reported first. Pipes are left alone: they
 * may never end. Returns -1 for the caller to pass on. */
static int blame_damage(csv_reader *reader, nn_error *err) {
    csv_input *in = &reader->input;
    if (!err || !in->file || in->at_end || in->read_failed || !in->regular_file || gzdirect(in->file)) return -1;
    int got;
    while ((got = gzread(in->file, in->buffer, (unsigned)in->capacity)) > 0) continue;
    if (got == 0 && nn_gz_clean_end(in->file)) return -1;
    in->read_failed = true;
    /* The row's message without its "PATH:LINE: ". */
    char row[sizeof err->message];
    const char *rest = err->message + strlen(reader->name);
    const char *after = strstr(rest, ": ");
    snprintf(row, sizeof row, "%s", after && rest[0] == ':' ? after + 2 : err->message);
    int zlib_status;
    const char *text = gzerror(in->file, &zlib_status);
    if (zlib_status == Z_BUF_ERROR)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: the gzip stream ends unexpectedly (and line %lld before the end "
                            "fails: %s)",
                            reader->name, (long long)in->line, row);
    return nn_error_set(err, NN_ERR_INPUT, "%s: damaged gzip data: %s (it shows first at line %lld: %s)",
                        reader->name, zlib_status == Z_ERRNO ? strerror(errno) : text, (long long)in->line, row);
}

/* ---- the header and the columns ---- */

static int read_header(csv_reader *reader, const char *text, size_t length, nn_error *err) {
    const char *end = text + length;
    int count = 0;
    if (count_cells(reader, text, end, 0, &count, err) < 0) return -1;
    if (count > NN_CSV_COLUMN_LIMIT)
        return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: the header has more than the %d columns supported",
                            reader->name, (long long)reader->input.line, NN_CSV_COLUMN_LIMIT);
    reader->names = malloc(length + (size_t)count);
    reader->name_offsets = malloc((size_t)count * sizeof *reader->name_offsets);
    if (!reader->names || !reader->name_offsets) return nn_error_oom(err, "the CSV header");
    size_t used = 0;
    const char *p = text;
    for (int column = 0; column < count; column++) {
        csv_cell cell;
        next_cell(reader->delimiter, p, end, &cell, &p);
        reader->name_offsets[column] = used;
        for (size_t i = 0; i < cell.length; i++) {
            reader->names[used++] = cell.text[i];
            if (cell.quoted && cell.text[i] == '"') i++; /* "" is one quote */
        }
        reader->names[used++] = '\0';
    }
    reader->columns = count;
    reader->header_line = reader->input.line;
    return 0;
}

/* Whole text of a selector as written, for messages. */
static const char *selector_text(const nn_csv_selector *selector, char *buffer, size_t size) {
    if (selector->is_range)
        snprintf(buffer, size, "%s:%s", selector->first, selector->last);
    else
        snprintf(buffer, size, "%s", selector->first);
    return buffer;
}

/* [+-]digits as an index: true and *value (saturated far beyond any column
 * count), or false for text that is a name. */
static bool parse_index(const char *text, long long *value) {
    const char *p = text;
    bool negative = *p == '-';
    if (*p == '+' || *p == '-') p++;
    if (!*p) return false;
    long long result = 0;
    for (; *p; p++) {
        if (!is_digit(*p)) return false;
        if (result < INT_MAX) result = result * 10 + (*p - '0');
    }
    *value = negative ? -result : result;
    return true;
}

/* "'a', 'b', 'c', and 12 more" */
static const char *list_names(const csv_reader *reader, char *buffer, size_t size) {
    size_t used = 0;
    buffer[0] = '\0';
    int shown = reader->columns < NAMES_IN_MESSAGE ? reader->columns : NAMES_IN_MESSAGE;
    for (int column = 0; column < shown && used < size; column++) {
        char name[QUOTED_IN_MESSAGE * 4 + 32];
        const char *text = column_name(reader, column);
        used += (size_t)snprintf(buffer + used, size - used, "%s%s", column ? ", " : "",
                                 quote_text(name, sizeof name, text, strlen(text)));
    }
    if (reader->columns > shown && used < size)
        snprintf(buffer + used, size - used, ", and %d more", reader->columns - shown);
    return buffer;
}

/* One end of a selector (an index or a header name) as a column index. */
static int resolve_end(const csv_reader *reader, const char *role, const char *whole, const char *text, int *column,
                       nn_error *err) {
    int columns = reader->columns;
    long long index;
    if (parse_index(text, &index)) {
        long long resolved = index < 0 ? columns + index : index;
        if (resolved < 0 || resolved >= columns)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: %s '%s': index %lld is out of range: the file has %d column%s (indexes 0 "
                                "to %d, or -%d to -1 from the end)",
                                reader->name, role, whole, index, columns, columns == 1 ? "" : "s", columns - 1,
                                columns);
        *column = (int)resolved;
        return 0;
    }
    char name[QUOTED_IN_MESSAGE * 4 + 32];
    quote_text(name, sizeof name, text, strlen(text));
    if (!reader->names)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: %s '%s': %s is a column name, but the file has no header (header: false): select "
                            "by 0-based index, the file has %d column%s",
                            reader->name, role, whole, name, columns, columns == 1 ? "" : "s");
    int found = -1;
    for (int i = 0; i < columns; i++) {
        if (strcmp(column_name(reader, i), text) != 0) continue;
        if (found >= 0)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: %s '%s': the header (line %lld) names both column %d and column %d %s: "
                                "select by 0-based index instead",
                                reader->name, role, whole, (long long)reader->header_line, found + 1, i + 1, name);
        found = i;
    }
    if (found < 0) {
        char names[700];
        return nn_error_set(err, NN_ERR_INPUT, "%s: %s '%s': no column named %s in the header (line %lld): %s",
                            reader->name, role, whole, name, (long long)reader->header_line,
                            list_names(reader, names, sizeof names));
    }
    *column = found;
    return 0;
}


/* Who selected a column first, for "selected twice" messages. */
typedef struct column_owner {
    const char *role; /* "features" or "target"; NULL: nobody */
    const nn_csv_selector *selector;
} column_owner;

/* Appends the columns of every selector of list to order, in the order
 * written, and marks them in owners. With strict false (targets that are
 * not read, named only to be left out of the default features) a selector
 * that does not resolve is passed over. */
static int resolve_list(const csv_reader *reader, const nn_csv_columns *list, const char *role, bool strict,
                        column_owner *owners, int *order, int *count, nn_error *err) {
    char whole[512], a[QUOTED_IN_MESSAGE * 4 + 64], b[QUOTED_IN_MESSAGE * 4 + 64];
    nn_error ignored;
    nn_error *where = strict ? err : &ignored;
    *count = 0;
    for (int s = 0; s < list->count; s++) {
        const nn_csv_selector *selector = &list->items[s];
        selector_text(selector, whole, sizeof whole);
        int first, last;
        if (resolve_end(reader, role, whole, selector->first, &first, where) < 0) {
            if (strict) return -1;
            continue;
        }
        last = first;
        if (selector->is_range && resolve_end(reader, role, whole, selector->last, &last, where) < 0) {
            if (strict) return -1;
            continue;
        }
        if (first > last) {
            if (!strict) continue;
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: %s '%s': the range runs backwards: its first column, %s, comes after its "
                                "last, %s",
                                reader->name, role, whole, describe_column(reader, first, a, sizeof a),
                                describe_column(reader, last, b, sizeof b));
        }
        for (int column = first; column <= last; column++) {
            column_owner *owner = &owners[column];
            if (owner->role) {
                if (!strict) continue;
                char before[512];
                return nn_error_set(err, NN_ERR_INPUT,
                                    "%s: %s is selected twice: by %s '%s' and by %s '%s' (a column can be read "
                                    "once, as a feature or as a target)",
                                    reader->name, describe_column(reader, column, a, sizeof a), owner->role,
                                    selector_text(owner->selector, before, sizeof before), role, whole);
            }
            owner->role = role;
            owner->selector = selector;
            order[(*count)++] = column;
        }
    }
    return 0;
}

/* Turns the selectors into a slot per column. Targets that are not read
 * (predict, the stream) still leave the default features, when they
 * resolve in this file; with features given they play no part, so that a
 * file without the target column reads as well as one with it. */
static int resolve_columns(csv_reader *reader, const nn_csv_options *options, bool read_targets, nn_error *err) {
    int columns = reader->columns, feature_count = 0, target_count = 0, status = 0;
    column_owner *owners = calloc((size_t)columns, sizeof *owners);
    int *features = malloc((size_t)columns * sizeof *features);
    int *targets = malloc((size_t)columns * sizeof *targets);
    reader->slots = malloc((size_t)columns * sizeof *reader->slots);
    if (!owners || !features || !targets || !reader->slots) {
        status = nn_error_oom(err, "the CSV columns");
        goto done;
    }
    bool features_given = options->features.count > 0;
    if (read_targets || !features_given)
        status = resolve_list(reader, &options->target, "target", read_targets, owners, targets, &target_count, err);
    if (status == 0 && features_given)
        status = resolve_list(reader, &options->features, "features", true, owners, features, &feature_count, err);
    if (status < 0) goto done;
    if (!features_given)
        for (int column = 0; column < columns; column++)
            if (!owners[column].role) features[feature_count++] = column;
    if (feature_count == 0) {
        status = nn_error_set(err, NN_ERR_INPUT,
                              "%s: no feature columns: the target selects all %d column%s of the file", reader->name,
                              columns, columns == 1 ? "" : "s");
        goto done;
    }
    for (int column = 0; column < columns; column++) reader->slots[column] = SLOT_SKIP;
    for (int i = 0; i < feature_count; i++) reader->slots[features[i]] = i;
    if (!read_targets) target_count = 0;
    for (int i = 0; i < target_count; i++) reader->slots[targets[i]] = TARGET_SLOT(i);
    reader->feature_count = feature_count;
    reader->target_count = target_count;
done:
    free(owners);
    free(features);
    free(targets);
    return status;
}

/* ---- opening ---- */

static int check_options(const nn_csv_options *options, const char *name, nn_error *err) {
    unsigned char delimiter = (unsigned char)options->delimiter;
    if (delimiter && delimiter != '\t' && (delimiter < 0x20 || delimiter >= 0x7f))
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: delimiter 0x%02x cannot be used: expected a printable ASCII character or a tab "
                            "(or none, for runs of whitespace)",
                            name, delimiter);
    if (delimiter && strchr("0123456789+-.eE\"", delimiter))
        return nn_error_set(err, NN_ERR_INPUT, "%s: delimiter '%c' cannot be used: %s", name, delimiter,
                            delimiter == '"' ? "it quotes cells" : "it can be part of a number");
    if (options->skip_rows < 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: skip_rows must be >= 0, got %d", name, options->skip_rows);
    return 0;
}

static int no_rows(const csv_reader *reader, const char *where, nn_error *err) {
    if (reader->input.line == 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: no data rows: the file is empty", reader->name);
    return nn_error_set(err, NN_ERR_INPUT, "%s: no data rows: the file ends at line %lld, %s", reader->name,
                        (long long)reader->input.line, where);
}

/* The first bytes: a byte-order mark is passed over, and a file of some
 * other kind is named as such rather than read as a table of text. */
static int check_start(csv_reader *reader, nn_error *err) {
    csv_input *in = &reader->input;
    if (fill(reader, err) < 0) return -1;
    if (in->end >= 3 && !memcmp(in->buffer, "\xef\xbb\xbf", 3)) in->start = in->scan = 3;
    size_t size = in->end - in->start < 8 ? in->end - in->start : 8;
    const char *kind = nn_file_kind((const unsigned char *)in->buffer + in->start, size);
    if (kind && strncmp(kind, "text", 4) != 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: not a CSV file: it looks like %s", reader->name, kind);
    return 0;
}

/* Opens the file and reads up to its first data row, which is left in
 * reader->pending; columns and slots are known after. */
static int reader_open(csv_reader *reader, const char *path, const nn_csv_options *options, bool read_targets,
                       nn_error *err) {
    memset(reader, 0, sizeof *reader);
    reader->name = strdup(strcmp(path, "-") == 0 ? "<stdin>" : path);
    if (!reader->name) return nn_error_oom(err, "a file name");
    if (check_options(options, reader->name, err) < 0) return -1;
    reader->delimiter = options->delimiter;
    reader->input.file = nn_gz_open(path, reader->name, true, &reader->input.regular_file, err);
    if (!reader->input.file || check_start(reader, err) < 0) return -1;
    const char *text;
    size_t length;
    char where[128];
    for (int i = 0; i < options->skip_rows; i++) {
        int got = read_line(reader, &text, &length, err);
        if (got < 0) return -1;
        if (got == 0) {
            snprintf(where, sizeof where, "within the %d line%s skipped (skip_rows)", options->skip_rows,
                     options->skip_rows == 1 ? "" : "s");
            return no_rows(reader, where, err);
        }
    }
    if (options->header) {
        int got = read_line(reader, &text, &length, err);
        if (got < 0) return -1;
        if (got == 0) return no_rows(reader, "before the header (header: true)", err);
        if (is_blank_line(text, length, reader->delimiter))
            return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: blank line where the header was expected (header: true)",
                                reader->name, (long long)reader->input.line);
        if (read_header(reader, text, length, err) < 0) return -1;
    }
    int got = next_row(reader, &text, &length, err);
    if (got < 0) return -1;
    if (got == 0) {
        snprintf(where, sizeof where, "%s", reader->blank_line ? "with only blank lines after " : "");
        if (reader->header_line)
            snprintf(where + strlen(where), sizeof where - strlen(where), "after the header (line %lld)",
                     (long long)reader->header_line);
        else if (reader->blank_line)
            snprintf(where, sizeof where, "with only blank lines");
        else
            snprintf(where, sizeof where, "with only skipped lines");
        return no_rows(reader, where, err);
    }
    reader->first_line = reader->input.line;
    if (!reader->names) {
        if (count_cells(reader, text, text + length, 0, &reader->columns, err) < 0) return -1;
        if (reader->columns > NN_CSV_COLUMN_LIMIT)
            return nn_error_set(err, NN_ERR_INPUT, "%s:%lld: the row has more than the %d columns supported",
                                reader->name, (long long)reader->input.line, NN_CSV_COLUMN_LIMIT);
    }
    if (resolve_columns(reader, options, read_targets, err) < 0) return -1;
    reader->pending = text;
    reader->pending_length = length;
    return 0;
}

static void reader_close(csv_reader *reader) {
    if (reader->input.file) gzclose(reader->input.file);
    free(reader->input.buffer);
    free(reader->name);
    free(reader->names);
    free(reader->name_offsets);
    free(reader->slots);
    memset(reader, 0, sizeof *reader);
}

/* ---- whole files ---- */

static const nn_csv_options default_options = {.delimiter = ','};

/* Doubles the row capacity of both outputs (width 0: none). */
static int grow_rows(double **features, int feature_width, double **targets, int target_width, int64_t *capacity,
                     nn_error *err) {
    int64_t rows = *capacity ? *capacity * 2 : FIRST_ROWS;
    int widest = feature_width > target_width ? feature_width : target_width;
    if ((uint64_t)rows > SIZE_MAX / sizeof(double) / (size_t)widest)
        return nn_error_oom(err, "the CSV rows");
    double *grown = realloc(*features, (size_t)rows * (size_t)feature_width * sizeof(double));
    if (!grown) return nn_error_oom(err, "the CSV features");
    *features = grown;
    if (target_width) {
        grown = realloc(*targets, (size_t)rows * (size_t)target_width * sizeof(double));
        if (!grown) return nn_error_oom(err, "the CSV targets");
        *targets = grown;
    }
    *capacity = rows;
    return 0;
}

static void set_array(nn_array *array, const char *name, double *data, int64_t rows, int width) {
    memset(array, 0, sizeof *array);
    snprintf(array->name, sizeof array->name, "%s", name);
    array->dtype = NN_F64;
    array->rank = 2;
    array->dims[0] = rows;
    array->dims[1] = width;
    array->data = data;
}

int nn_csv_read(const char *path, const nn_csv_options *options, bool require_targets, nn_array *features,
                nn_array *targets, int64_t *first_line, nn_error *err) {
    memset(features, 0, sizeof *features);
    if (targets) memset(targets, 0, sizeof *targets);
    if (!options) options = &default_options;
    bool read_targets = require_targets && targets && options->target.count > 0;
    csv_reader reader;
    double *feature_data = NULL, *target_data = NULL;
    int64_t rows = 0, capacity = 0;
    if (reader_open(&reader, path, options, read_targets, err) < 0) goto fail;
    int feature_width = reader.feature_count, target_width = reader.target_count;
    const char *text;
    size_t length;
    int got;
    while ((got = next_row(&reader, &text, &length, err)) > 0) {
        if (rows == capacity &&
            grow_rows(&feature_data, feature_width, &target_data, target_width, &capacity, err) < 0)
            goto fail;
        double *target_row = target_width ? target_data + rows * target_width : NULL;
        if (parse_row(&reader, text, length, feature_data + rows * feature_width, target_row, err) < 0) {
            blame_damage(&reader, err);
            goto fail;
        }
        rows++;
    }
    if (got < 0) {
        blame_damage(&reader, err);
        goto fail;
    }
    /* Gives back what the last doubling did not need. */
    double *shrunk = realloc(feature_data, (size_t)rows * (size_t)feature_width * sizeof(double));
    if (shrunk) feature_data = shrunk;
    if (target_width) {
        shrunk = realloc(target_data, (size_t)rows * (size_t)target_width * sizeof(double));
        if (shrunk) target_data = shrunk;
        set_array(targets, "targets", target_data, rows, target_width);
    }
    set_array(features, "features", feature_data, rows, feature_width);
    if (first_line) *first_line = reader.first_line;
    reader_close(&reader);
    return 0;
fail:
    free(feature_data);
    free(target_data);
    reader_close(&reader);
    return -1;
}

/* ---- streams ---- */

nn_csv_stream *nn_csv_stream_open(const char *path, const nn_csv_options *options, nn_error *err) {
    nn_csv_stream *stream = calloc(1, sizeof *stream);
    if (!stream) {
        nn_error_oom(err, "a CSV stream");
        return NULL;
    }
    if (reader_open(&stream->reader, path, options ? options : &default_options, false, err) < 0) goto fail;
    stream->row = malloc((size_t)stream->reader.feature_count * sizeof *stream->row);
    if (!stream->row) {
        nn_error_oom(err, "a CSV row");
        goto fail;
    }
    /* The row read ahead is parsed now, so that a bad first row fails the
     * open (as a bad header does) rather than the first read. */
    const char *text;
    size_t length;
    next_row(&stream->reader, &text, &length, err);
    if (parse_row(&stream->reader, text, length, stream->row, NULL, err) < 0) {
        blame_damage(&stream->reader, err);
        goto fail;
    }
    stream->row_ready = true;
    return stream;
fail:
    nn_csv_stream_close(stream);
    return NULL;
}

int nn_csv_stream_width(const nn_csv_stream *stream) { return stream->reader.feature_count; }

/* The parsed row into out as float32: a value beyond float's range would
 * become an infinity, so it is an error here. */
static int store_row(const nn_csv_stream *stream, float *out, nn_error *err) {
    const csv_reader *reader = &stream->reader;
    for (int i = 0; i < reader->feature_count; i++) {
        out[i] = (float)stream->row[i];
        if (!isinf(out[i])) continue;
        int column = 0;
        while (reader->slots[column] != i) column++;
        char where[QUOTED_IN_MESSAGE * 4 + 64];
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s:%lld: %s: %g is out of range for float32 (beyond about 3.4e38)", reader->name,
                            (long long)reader->input.line, describe_column(reader, column, where, sizeof where),
                            stream->row[i]);
    }
    return 0;
}

int nn_csv_stream_read(nn_csv_stream *stream, float *out, int max_rows, nn_error *err) {
    if (stream->failed) {
        if (err) *err = stream->failure;
        return -1;
    }
    csv_reader *reader = &stream->reader;
    nn_error *error = &stream->failure;
    int rows = 0, width = reader->feature_count;
    while (rows < max_rows && !stream->ended) {
        if (stream->row_ready) {
            stream->row_ready = false;
        } else {
            const char *text;
            size_t length;
            int got = next_row(reader, &text, &length, error);
            if (got == 0) {
                stream->ended = true;
                break;
            }
            if (got < 0 || parse_row(reader, text, length, stream->row, NULL, error) < 0) {
                blame_damage(reader, error);
                goto fail;
            }
        }
        if (store_row(stream, out + (size_t)rows * (size_t)width, error) < 0) goto fail;
        rows++;
    }
    return rows;
fail:
    stream->failed = true;
    if (err) *err = stream->failure;
    return -1;
}

void nn_csv_stream_close(nn_csv_stream *stream) {
    if (!stream) return;
    reader_close(&stream->reader);
    free(stream->row);
    free(stream);
}

/* ---- selectors ---- */

static char *trimmed_copy(const char *text, size_t length) {
    while (length && is_blank(*text, 0)) text++, length--;
    while (length && is_blank(text[length - 1], 0)) length--;
    char *copy = malloc(length + 1);
    if (!copy) return NULL;
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

int nn_csv_columns_add(nn_csv_columns *columns, const char *text, nn_error *err) {
    if (!text) text = "";
    if (columns->count >= NN_CSV_MAX_SELECTORS)
        return nn_error_set(err, NN_ERR_INPUT, "column selector '%s': more than %d selectors in one list", text,
                            NN_CSV_MAX_SELECTORS);
    const char *colon = strchr(text, ':');
    if (colon && strchr(colon + 1, ':'))
        return nn_error_set(err, NN_ERR_INPUT,
                            "column range '%s': expected one ':' between the first and the last column (A:B)", text);
    nn_csv_selector selector = {.is_range = colon != NULL};
    selector.first = trimmed_copy(text, colon ? (size_t)(colon - text) : strlen(text));
    if (colon) selector.last = trimmed_copy(colon + 1, strlen(colon + 1));
    if (!selector.first || (colon && !selector.last)) {
        free(selector.first);
        free(selector.last);
        return nn_error_oom(err, "a column selector");
    }
    int status = 0;
    long long first, last;
    if (!colon && !*selector.first)
        status = nn_error_set(err, NN_ERR_INPUT,
                              "empty column selector: expected a 0-based index, a header name or a range A:B");
    else if (colon && (!*selector.first || !*selector.last))
        status = nn_error_set(err, NN_ERR_INPUT,
                              "column range '%s': expected both ends, A:B (inclusive), such as '0:29' or '2:-1'",
                              text);
    else if (colon && parse_index(selector.first, &first) && parse_index(selector.last, &last) &&
             (first < 0) == (last < 0) && first > last)
        status = nn_error_set(err, NN_ERR_INPUT,
                              "column range '%s': the first column (%lld) comes after the last (%lld)", text, first,
                              last);
    if (status < 0) {
        free(selector.first);
        free(selector.last);
        return -1;
    }
    columns->items[columns->count++] = selector;
    return 0;
}

void nn_csv_columns_free(nn_csv_columns *columns) {
    if (!columns) return;
    for (int i = 0; i < columns->count; i++) {
        free(columns->items[i].first);
        free(columns->items[i].last);
    }
    memset(columns, 0, sizeof *columns);
}
