/* ust_sysctl_read and ust_sysctl_int (stack/sysctl.c) on files of our own:
 * what /proc/sys files look like (a number and a newline, two numbers),
 * what they never should (no number, a file longer than the buffer), and
 * a path that does not exist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sysctl.h"

static char path[64];

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	int fd;

	(void)state;
	strcpy(path, "/tmp/ustcp-sysctl-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_int(void **state)
{
	(void)state;
	write_file("1\n");
	assert_int_equal(ust_sysctl_int(path, 7), 1);
	write_file("-12\n");
	assert_int_equal(ust_sysctl_int(path, 7), -12);
	write_file("32768\t60999\n"); /* ip_local_port_range: the first */
	assert_int_equal(ust_sysctl_int(path, 7), 32768);
	write_file("\n");
	assert_int_equal(ust_sysctl_int(path, 7), 7);
	write_file("abc\n");
	assert_int_equal(ust_sysctl_int(path, 7), 7);
	write_file("99999999999\n");
	assert_int_equal(ust_sysctl_int(path, 7), 7);
	assert_int_equal(ust_sysctl_int("/nonexistent/ustcp", 7), 7);
}

static void test_read(void **state)
{
	char buf[8];

	(void)state;
	write_file("1000,2000-2010\n");
	assert_int_equal(ust_sysctl_read(path, buf, sizeof(buf)), -EFBIG);
	assert_int_equal(strlen(buf), sizeof(buf) - 1); /* cut, terminated */
	write_file("40000\n");
	assert_int_equal(ust_sysctl_read(path, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "40000\n");
	assert_int_equal(ust_sysctl_read("/nonexistent/ustcp", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(ust_sysctl_read(path, buf, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_int, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
