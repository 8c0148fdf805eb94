#include "io/file_kind.h"

#include <string.h>

const char *nn_file_kind(const unsigned char *bytes, size_t size) {
    static const struct {
        const char *bytes;
        size_t length;
        const char *what;
    } kinds[] = {
        {"NNSEQCK", 7, "an nnseq checkpoint"},
        {"\x89PNG", 4, "a PNG image"},
        {"\x93NUMPY", 6, "a NumPy .npy array"},
        {"PK\x03\x04", 4, "a zip archive (such as .npz weights)"},
        {"PK\x05\x06", 4, "a zip archive (such as .npz weights)"},
        {"\x1f\x8b", 2, "a gzip file"},
        {"\xff\xd8\xff", 3, "a JPEG image"},
        {"GIF8", 4, "a GIF image"},
        {"%PDF", 4, "a PDF document"},
        {"\x7f" "ELF", 4, "a program"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t length = kinds[i].length < 4 ? kinds[i].length : 4;
        if (size >= length && !memcmp(bytes, kinds[i].bytes, size < kinds[i].length ? size : kinds[i].length))
            return kinds[i].what;
    }
    /* IDX: two zero bytes, a type code (unsigned byte, byte, short, int,
     * float, double), then the number of dimensions. */
    if (size >= 4 && bytes[0] == 0 && bytes[1] == 0 && memchr("\x08\x09\x0b\x0c\x0d\x0e", bytes[2], 6) &&
        bytes[3] >= 1 && bytes[3] <= 8)
        return "an IDX data file";
    size_t printable = 0;
    for (size_t i = 0; i < size; i++)
        printable += (bytes[i] >= 0x20 && bytes[i] < 0x7f) || bytes[i] == '\n' || bytes[i] == '\r' ||
                     bytes[i] == '\t';
    if (size >= 4 && printable == size) return "text (a YAML config or a CSV table?)";
    return NULL;
}
