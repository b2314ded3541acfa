/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_tomlbridge.c - TOML documents as jansson trees (document order,
 * value types, errors as "name:line:column: reason", hostile nesting) and
 * load_data_file() by extension.
 */
#include "testutil.h"

#include <jansson.h>
#include <unistd.h>

#include "tomlbridge.h"

static char *tmpdir;

static int
setup_tmp(void **state)
{
	(void)state;
	tmpdir = test_mkdtemp("tomlbridge");
	return 0;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	test_rmtree(tmpdir);
	return 0;
}

/* Write a file under the temporary directory; returns its path. */
static char *
write_tmp(const char *name, const char *text)
{
	return test_write_file(tmpdir, name, text);
}

/* Convert TOML text and compare the compact JSON dump. */
static void
assert_toml(const char *toml, const char *want)
{
	char *err = NULL;
	json_t *j = toml_to_json(toml, strlen(toml), "doc.toml", &err);
	char *s;

	if (j == NULL)
		fail_msg("toml_to_json: %s", err);
	assert_null(err);
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_string_equal(s, want);
	free(s);
	json_decref(j);
}

static void
assert_toml_error(const char *toml, size_t len, const char *want)
{
	char *err = NULL;
	json_t *j = toml_to_json(toml, len, "doc.toml", &err);

	assert_null(j);
	assert_non_null(err);
	assert_string_equal(err, want);
	free(err);
}

static void
test_document_order_and_types(void **state)
{
	(void)state;
	assert_toml(
	    "b = 1\n"
	    "a = 2\n"
	    "[z]\n"
	    "when = 1979-05-27T07:32:00Z\n"
	    "local = 1979-05-27T07:32:00\n"
	    "day = 1979-05-27\n"
	    "time = 07:32:00\n"
	    "f = 1.5\n"
	    "big = 9223372036854775807\n"
	    "neg = -17\n"
	    "yes = true\n"
	    "no = false\n"
	    "[c]\n"
	    "s = \"x\\u0000y\"\n"
	    "lit = 'C:\\path'\n"
	    "[z.y]\n"
	    "k = [1, \"two\", [3]]\n",
	    "{\"b\":1,\"a\":2,\"z\":{\"when\":\"1979-05-27T07:32:00Z\","
	    "\"local\":\"1979-05-27T07:32:00\",\"day\":\"1979-05-27\","
	    "\"time\":\"07:32:00\",\"f\":1.5,\"big\":9223372036854775807,"
	    "\"neg\":-17,\"yes\":true,\"no\":false,"
	    "\"y\":{\"k\":[1,\"two\",[3]]}},"
	    "\"c\":{\"s\":\"x\\u0000y\",\"lit\":\"C:\\\\path\"}}");
	/* the labels of a rule file keep their order, not sorted */
	assert_toml(
	    "[rules]\n"
	    "Zeta = ['^5']\n"
	    "Alpha = ['^4']\n"
	    "\"Quoted Label\" = []\n"
	    "Mid = [\n  'a', # comment\n  'b',\n]\n",
	    "{\"rules\":{\"Zeta\":[\"^5\"],\"Alpha\":[\"^4\"],"
	    "\"Quoted Label\":[],\"Mid\":[\"a\",\"b\"]}}");
	assert_toml(
	    "a.b.c = 1\n"
	    "d = 2\n"
	    "a.e = 3\n"
	    "[[arr]]\nx = 1\n[[arr]]\ny = 2\n"
	    "[t]\nz = { p = 1, o = 2 }\n",
	    "{\"a\":{\"b\":{\"c\":1},\"e\":3},\"d\":2,"
	    "\"arr\":[{\"x\":1},{\"y\":2}],\"t\":{\"z\":{\"p\":1,\"o\":2}}}");
	assert_toml("", "{}");
	/* an embedded NUL survives in the value's length */
	char *err = NULL;
	json_t *j = toml_to_json("s = \"a\\u0000b\"", 14, "n.toml", &err);
	assert_non_null(j);
	assert_int_equal(json_string_length(json_object_get(j, "s")), 3);
	json_decref(j);
}

static void
test_toml_errors(void **state)
{
	(void)state;
	assert_toml_error("a = 1\na = 2\n", 12, "doc.toml:2:5: Error while "
	    "parsing key-value pair: cannot redefine existing integer 'a'");
	assert_toml_error("[rules]\nA = [\"x\"\n", 17, "doc.toml:2:10: Error "
	    "while parsing array: encountered end-of-file");
	assert_toml_error("a = \"\xff\"\n", 8, "doc.toml:1:5: Encountered "
	    "invalid utf-8 sequence");
	assert_toml_error("x = nan\n", 8, "doc.toml:1:5: nan and inf are not "
	    "accepted");
	assert_toml_error("x = -inf\n", 9, "doc.toml:1:5: nan and inf are not "
	    "accepted");
}

static void
test_hostile_nesting(void **state)
{
	struct buf b = { 0 };
	char *text;
	size_t len;

	(void)state;
	/* deeper than our conversion goes: a clean error */
	buf_putc(&b, '[');
	for (int i = 0; i < 200; i++)
		buf_puts(&b, i ? ".a" : "a");
	buf_puts(&b, "]\nx = 1\n");
	len = b.len;
	text = buf_steal(&b);
	assert_toml_error(text, len, "doc.toml:1:1: nesting is too deep");
	free(text);

	/* deep enough to overflow the stack inside toml++: refused first */
	buf_puts(&b, "# a comment with dots ... is fine\nok = \"....\"\n[");
	for (int i = 0; i < 100000; i++)
		buf_puts(&b, i ? ".a" : "a");
	buf_puts(&b, "]\nx = 1\n");
	len = b.len;
	text = buf_steal(&b);
	assert_toml_error(text, len, "doc.toml:3:1: key path nests too deeply");
	free(text);

	/* toml++'s own bound on arrays */
	for (int i = 0; i < 300; i++)
		buf_putc(&b, '[');
	for (int i = 0; i < 300; i++)
		buf_putc(&b, ']');
	text = xasprintf("x = %.*s\n", (int)b.len, b.data);
	buf_free(&b);
	assert_toml_error(text, strlen(text), "doc.toml:1:261: Error while "
	    "parsing value: exceeded maximum nested value depth of 256 "
	    "(TOML_MAX_NESTED_VALUES)");
	free(text);

	/* many dots inside strings, multi-line strings and comments count
	 * for nothing */
	buf_puts(&b, "s = \"");
	for (int i = 0; i < 3000; i++)
		buf_putc(&b, '.');
	buf_puts(&b, "\"\nm = '''\n");
	for (int i = 0; i < 3000; i++)
		buf_putc(&b, '.');
	buf_puts(&b, "'''\n# ");
	for (int i = 0; i < 3000; i++)
		buf_putc(&b, '.');
	buf_puts(&b, "\nk = 1\n");
	len = b.len;
	text = buf_steal(&b);
	char *err = NULL;
	json_t *j = toml_to_json(text, len, "dots.toml", &err);
	if (j == NULL)
		fail_msg("%s", err);
	assert_int_equal(json_string_length(json_object_get(j, "s")), 3000);
	assert_int_equal(json_integer_value(json_object_get(j, "k")), 1);
	json_decref(j);
	free(text);
}

static void
test_load_data_file(void **state)
{
	char *t = write_tmp("a.toml", "[x]\ny = 1\n");
	char *js = write_tmp("a.json", "{\"x\": {\"y\": 1}}");
	char *other = write_tmp("domains.conf", "{\"x\": {\"y\": 1}}");
	char *yaml = write_tmp("a.yaml", "x:\n  y: 1\n");
	char *dup = write_tmp("dup.json", "{\"a\":1,\"a\":2}");
	char *bad = write_tmp("bad.json", "{\"a\": [}");
	char *missing = xasprintf("%s/missing.toml", tmpdir);
	char *err = NULL, *want, *s;
	json_t *j;

	(void)state;
	j = load_data_file(t, 0, &err);
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"x\":{\"y\":1}}");
	free(s);
	json_decref(j);

	j = load_data_file(js, 0, &err);
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"x\":{\"y\":1}}");
	free(s);
	json_decref(j);

	/* KumoMTA's listener-domain files read any other name as JSON */
	j = load_data_file(other, 1, &err);
	assert_non_null(j);
	json_decref(j);
	assert_null(load_data_file(other, 0, &err));
	want = xasprintf("%s: unsupported file type: the name must end in "
	    ".toml or .json", other);
	assert_string_equal(err, want);
	free(want);
	free(err);

	assert_null(load_data_file(yaml, 0, &err));
	want = xasprintf("%s: unsupported file type: the name must end in "
	    ".toml or .json", yaml);
	assert_string_equal(err, want);
	free(want);
	free(err);

	assert_null(load_data_file(dup, 0, &err));
	want = xasprintf("%s:1:10: duplicate object key near '\"a\"'", dup);
	assert_string_equal(err, want);
	free(want);
	free(err);

	assert_null(load_data_file(bad, 0, &err));
	want = xasprintf("%s:1:8: unexpected token near '}'", bad);
	assert_string_equal(err, want);
	free(want);
	free(err);

	assert_null(load_data_file(missing, 0, &err));
	want = xasprintf("%s: No such file or directory", missing);
	assert_string_equal(err, want);
	free(want);
	free(err);

	assert_null(load_data_file(tmpdir, 1, &err));
	want = xasprintf("%s: Is a directory", tmpdir);
	assert_string_equal(err, want);
	free(want);
	free(err);

	free(t);
	free(js);
	free(other);
	free(yaml);
	free(dup);
	free(bad);
	free(missing);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_document_order_and_types),
		cmocka_unit_test(test_toml_errors),
		cmocka_unit_test(test_hostile_nesting),
		cmocka_unit_test(test_load_data_file),
	};

	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
