/*  taxonomy — the two-level category taxonomy contacts are filed under (docs/api/contacts.md,
    "Categories"; the file format is described at the top of config/taxonomy.txt).

    A category ("registration") has subcategories ("registration.update_details"). A contact
    carries codes of either level. A category, or one subcategory, may be marked sensitive
    (GBV, child protection, PSEA, protection concern): a contact carrying a sensitive code is
    visible only to its author, supervisors and protection staff.

    intake loads the taxonomy once at start from the file named by GL_INTAKE_TAXONOMY, or the
    built-in default (the same text as config/taxonomy.txt) when it is unset. A file that does
    not parse stops the start with "path:line: reason". The taxonomy is immutable afterwards.
*/
#ifndef INTAKE_TAXONOMY_H
#define INTAKE_TAXONOMY_H
#include "gl/gl_config.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _taxonomy_t taxonomy_t;

//  Limits.
#define TAXONOMY_PART_MAX       32          //  characters of one level of a code, [a-z][a-z0-9_]*
#define TAXONOMY_CODE_MAX       (2 * TAXONOMY_PART_MAX + 1)     //  "category.subcategory"
#define TAXONOMY_LABEL_MAX      80          //  characters (UTF-8 code points)
#define TAXONOMY_CATEGORIES_MAX 64
#define TAXONOMY_SUBS_MAX       64          //  subcategories of one category
#define TAXONOMY_LINE_MAX       512         //  bytes of one line
#define TAXONOMY_FILE_MAX       (256 * 1024)    //  bytes of the file

//  Parse taxonomy text. origin names the text in errors ("config/taxonomy.txt", "built-in").
//  A new taxonomy, or NULL with "origin:line: reason" in err.
taxonomy_t *taxonomy_new_from_text (const char *text, size_t len, const char *origin, char *err,
                                    size_t errlen);

//  Read and parse the file at path. NULL with the reason (naming the file and line) in err.
taxonomy_t *taxonomy_new_from_file (const char *path, char *err, size_t errlen);

//  GL_INTAKE_TAXONOMY's file, or the built-in default when the key is unset.
taxonomy_t *taxonomy_new_from_config (gl_config_t *config, char *err, size_t errlen);

void taxonomy_destroy (taxonomy_t **self_p);

//  Look code up. True when it is a category or a subcategory; then *sensitive (may be NULL)
//  says whether a contact carrying it is sensitive (its own mark or its category's), and
//  *category (may be NULL) points to its category's code (the code itself for a category),
//  borrowed from self.
bool taxonomy_find (const taxonomy_t *self, const char *code, bool *sensitive,
                    const char **category);

//  The taxonomy as JSON: {"categories": [{"code", "label", "sensitive", "subcategories":
//  [{"code", "label", "sensitive"}]}]}. A new reference.
json_t *taxonomy_json (const taxonomy_t *self);

//  Number of codes (categories and subcategories).
size_t taxonomy_size (const taxonomy_t *self);

//  The built-in default, NUL-terminated.
extern const char taxonomy_default_text[];

#endif
