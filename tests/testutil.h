/* Small helpers shared by the test programs. */
#ifndef NNSEQ_TEST_UTIL_H
#define NNSEQ_TEST_UTIL_H

#include <check.h>
#include <stddef.h>

/* Runs the suite, prints Check's summary, returns the process exit status. */
int testutil_run(Suite *suite);

/* A fresh temporary directory for this test program (removed at exit by the
 * caller's choice, not automatically); path written into buffer. */
const char *testutil_tmpdir(char *buffer, size_t size);

/* Removes the files in dir (not folders below it) and dir itself. */
void testutil_remove_tmpdir(const char *dir);

/* "DIR/NAME" into buffer. */
const char *testutil_path(char *buffer, size_t size, const char *dir, const char *name);

/* Writes size bytes to path; returns 0 on success. */
int testutil_write_file(const char *path, const void *data, size_t size);

#endif
