/* SPDX-License-Identifier: Apache-2.0 */
// tomlbridge.cc - the one C++ unit: TOML documents as jansson trees (with
// toml++), and loading of data files (rule files, the daemon's configuration,
// listener-domain files) by extension.
//
// Everything C++ stays inside this file: every entry point is extern "C",
// catches every exception, and hands back plain jansson values and malloc'ed
// C strings, so the C side never sees a C++ type or an unwinding stack.

#include "config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "tomlbridge.h"

extern "C" {
#include "util.h"
}

namespace {

// toml++ bounds arrays and inline tables, but a table header such as
// [a.a.a...] can nest as deep as the input is long. Both our conversion and
// jansson's json_decref() recurse, so a hostile file could exhaust the
// stack; no real configuration comes near this depth.
constexpr int max_depth = 128;

// toml++ builds and frees its tree recursively, and a key path such as
// [a.a.a...] nests one table per part with no limit: tens of thousands of
// parts overflow the stack inside toml++ itself, before max_depth can be
// checked. A key path lies on one line, so bounding the dots per line
// outside strings and comments bounds the depth. Real documents have a
// handful per line (dotted keys, floats, fractional seconds).
constexpr unsigned max_dots_per_line = 1000;

// A conversion failure with the position of the offending node.
struct convert_error {
	std::string reason;
	toml::source_position where;
};

char *
dup_message(const std::string &s)
{
	char *p = static_cast<char *>(std::malloc(s.size() + 1));

	if (p == nullptr)
		fatalx("out of memory");
	std::memcpy(p, s.c_str(), s.size() + 1);
	return p;
}

std::string
positioned(const char *name, const toml::source_position &pos,
    std::string_view reason)
{
	std::ostringstream os;

	os << name << ':' << pos.line << ':' << pos.column << ": " << reason;
	return os.str();
}

// Dates and times keep their TOML text: JSON has no such type, and the
// consumers that want one parse the text themselves.
template <typename T>
json_t *
as_text(const T &v)
{
	std::ostringstream os;

	os << v;
	const std::string s = os.str();
	return json_stringn(s.data(), s.size());
}

json_t *convert(const toml::node &n, int depth);

json_t *
convert_table(const toml::table &t, int depth)
{
	// toml::table is a sorted map; the labels of a rule file and the keys
	// of a configuration must come back in document order, which the
	// keys' source positions give.
	std::vector<std::pair<const toml::key *, const toml::node *>> items;
	for (auto &&[k, v] : t)
		items.emplace_back(&k, &v);
	std::stable_sort(items.begin(), items.end(),
	    [](const auto &a, const auto &b) {
		const toml::source_position &pa = a.first->source().begin;
		const toml::source_position &pb = b.first->source().begin;
		if (pa.line != pb.line)
			return pa.line < pb.line;
		return pa.column < pb.column;
	    });

	json_t *obj = json_object();
	if (obj == nullptr)
		throw std::bad_alloc();
	for (const auto &[k, v] : items) {
		json_t *jv;
		try {
			jv = convert(*v, depth + 1);
		} catch (...) {
			json_decref(obj);
			throw;
		}
		const std::string_view key = k->str();
		// json_object_setn_new takes keys with embedded NULs too.
		if (json_object_setn_new(obj, key.data(), key.size(), jv) != 0) {
			json_decref(obj);
			throw convert_error{ "key is not valid UTF-8",
			    k->source().begin };
		}
	}
	return obj;
}

json_t *
convert_array(const toml::array &a, int depth)
{
	json_t *arr = json_array();
	if (arr == nullptr)
		throw std::bad_alloc();
	for (const toml::node &v : a) {
		json_t *jv;
		try {
			jv = convert(v, depth + 1);
		} catch (...) {
			json_decref(arr);
			throw;
		}
		if (json_array_append_new(arr, jv) != 0) {
			json_decref(arr);
			throw std::bad_alloc();
		}
	}
	return arr;
}

json_t *
convert(const toml::node &n, int depth)
{
	json_t *v = nullptr;

	if (depth > max_depth)
		throw convert_error{ "nesting is too deep",
		    n.source().begin };
	switch (n.type()) {
	case toml::node_type::table:
		return convert_table(*n.as_table(), depth);
	case toml::node_type::array:
		return convert_array(*n.as_array(), depth);
	case toml::node_type::string: {
		const std::string &s = n.as_string()->get();
		v = json_stringn(s.data(), s.size());
		break;
	}
	case toml::node_type::integer:
		v = json_integer(n.as_integer()->get());
		break;
	case toml::node_type::floating_point: {
		const double d = n.as_floating_point()->get();
		// JSON cannot hold nan or inf, and no setting of ours wants one.
		if (!std::isfinite(d))
			throw convert_error{ "nan and inf are not accepted",
			    n.source().begin };
		v = json_real(d);
		break;
	}
	case toml::node_type::boolean:
		v = n.as_boolean()->get() ? json_true() : json_false();
		break;
	case toml::node_type::date:
		v = as_text(n.as_date()->get());
		break;
	case toml::node_type::time:
		v = as_text(n.as_time()->get());
		break;
	case toml::node_type::date_time:
		v = as_text(n.as_date_time()->get());
		break;
	default:
		throw convert_error{ "unsupported value type",
		    n.source().begin };
	}
	if (v == nullptr)
		throw convert_error{ "value cannot be represented",
		    n.source().begin };
	return v;
}

// Skip a string starting at t[i] (a quote); returns the index after it.
// Multi-line strings may end with up to two extra quotes (part of the
// content); a single-line string stops at the end of the line, where the
// parser will report it.
size_t
skip_string(std::string_view t, size_t i, unsigned long &line)
{
	const char q = t[i];
	const bool multi = t.compare(i, 3, std::string(3, q)) == 0;
	size_t j = i + (multi ? 3 : 1);

	while (j < t.size()) {
		if (t[j] == '\\' && q == '"') {
			j += 2;
			continue;
		}
		if (t[j] == '\n') {
			if (!multi)
				return j;
			line++;
		} else if (multi && t.compare(j, 3, std::string(3, q)) == 0) {
			j += 3;
			for (int k = 0; k < 2 && j < t.size() && t[j] == q; k++)
				j++;
			return j;
		} else if (!multi && t[j] == q)
			return j + 1;
		j++;
	}
	return j;
}

// The line whose key path would nest deeper than toml++ can take, or 0.
unsigned long
too_deep_line(std::string_view t)
{
	unsigned long line = 1;
	unsigned dots = 0;
	size_t i = 0;

	while (i < t.size()) {
		switch (t[i]) {
		case '\n':
			line++;
			dots = 0;
			i++;
			break;
		case '#':
			while (i < t.size() && t[i] != '\n')
				i++;
			break;
		case '"':
		case '\'':
			i = skip_string(t, i, line);
			break;
		case '.':
			if (++dots > max_dots_per_line)
				return line;
			i++;
			break;
		default:
			i++;
		}
	}
	return 0;
}

bool
ends_with(const char *s, const char *suffix)
{
	const size_t n = std::strlen(s), m = std::strlen(suffix);

	return n >= m && std::memcmp(s + n - m, suffix, m) == 0;
}

json_t *
load_json(const char *path, const char *text, size_t len, char **err)
{
	json_error_t e;
	// Duplicate keys are rejected as TOML rejects them: in a configuration
	// a silently ignored duplicate is a setting that does nothing.
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);

	if (root == nullptr)
		*err = xasprintf("%s:%d:%d: %s", path, e.line, e.column,
		    e.text);
	return root;
}

} // namespace

extern "C" json_t *
toml_to_json(const char *text, size_t len, const char *name, char **err)
{
	*err = nullptr;
	try {
		const std::string_view doc(text, len);
		if (const unsigned long line = too_deep_line(doc)) {
			*err = dup_message(positioned(name,
			    toml::source_position{ static_cast<toml::source_index>(
			    line), 1 }, "key path nests too deeply"));
			return nullptr;
		}
#if TOML_EXCEPTIONS
		toml::table tbl;
		try {
			tbl = toml::parse(doc, std::string_view(name));
		} catch (const toml::parse_error &e) {
			*err = dup_message(positioned(name, e.source().begin,
			    e.description()));
			return nullptr;
		}
#else
		toml::parse_result res = toml::parse(doc,
		    std::string_view(name));
		if (!res) {
			const toml::parse_error &e = res.error();
			*err = dup_message(positioned(name, e.source().begin,
			    e.description()));
			return nullptr;
		}
		const toml::table &tbl = res.table();
#endif
		return convert_table(tbl, 0);
	} catch (const convert_error &e) {
		*err = dup_message(positioned(name, e.where, e.reason));
	} catch (const std::bad_alloc &) {
		fatalx("out of memory");
	} catch (const std::exception &e) {
		*err = xasprintf("%s: %s", name, e.what());
	} catch (...) {
		*err = xasprintf("%s: cannot parse", name);
	}
	return nullptr;
}

extern "C" json_t *
load_data_file(const char *path, int any_as_json, char **err)
{
	const bool is_toml = ends_with(path, ".toml");
	const bool is_json = ends_with(path, ".json");
	size_t len;
	char *text;
	json_t *root;

	*err = nullptr;
	if (!is_toml && !is_json && !any_as_json) {
		*err = xasprintf("%s: unsupported file type: the name must end "
		    "in .toml or .json", path);
		return nullptr;
	}
	if ((text = read_file(path, &len)) == nullptr) {
		*err = xasprintf("%s: %s", path, std::strerror(errno));
		return nullptr;
	}
	if (is_toml)
		root = toml_to_json(text, len, path, err);
	else
		root = load_json(path, text, len, err);
	std::free(text);
	return root;
}
