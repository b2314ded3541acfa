/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tomlbridge.h - TOML documents as jansson trees (the one C++ unit, using
 * toml++), and loading of configuration data files by extension.
 */
#ifndef OOBD_TOMLBRIDGE_H
#define OOBD_TOMLBRIDGE_H

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse TOML text into a new jansson object: tables become objects (keys in
 * document order), arrays arrays, strings, integers, floats and booleans
 * their JSON counterparts, dates and times their TOML text. name is used in
 * error messages. On error returns NULL and sets *err to a malloc'ed
 * "name:line:column: reason".
 */
json_t	*toml_to_json(const char *text, size_t len, const char *name,
	    char **err);

/*
 * Load a data file: ".toml" as TOML, ".json" as JSON, anything else is an
 * error unless any_as_json is set (KumoMTA's listener-domain files treat
 * every other name as JSON). NULL and *err on failure, naming the file.
 */
json_t	*load_data_file(const char *path, int any_as_json, char **err);

#ifdef __cplusplus
}
#endif

#endif
