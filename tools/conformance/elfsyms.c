/*
 * elfsyms.c - the symbols a shared object exports, read from its dynamic
 * symbol table (.dynsym) without loading it.  perch's rule 1: a plugin
 * exports exactly one symbol, perch_backend_v1; everything else is hidden,
 * so that two plugins (or two versions of one) never bind to each other.
 */
#include "config.h"

#include "conformance.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the whole file: plugins are small. */
static unsigned char *slurp(const char *path, size_t *len, char **err)
{
	char *e = NULL;
	unsigned char *data = (unsigned char *)perch_read_file(path, len, &e);
	if (data == NULL)
		*err = e;
	return data;
}

static bool in_file(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

int perch_cf_elf_exports(const char *path, char ***names, size_t *n, char **err)
{
	size_t len = 0;
	unsigned char *data = slurp(path, &len, err);
	*names = NULL;
	*n = 0;
	if (data == NULL)
		return -1;
	int rc = -1;
	if (len < sizeof(Elf64_Ehdr) || memcmp(data, ELFMAG, SELFMAG) != 0) {
		*err = perch_xasprintf("%s is not an ELF file", path);
		goto out;
	}
	if (data[EI_CLASS] != ELFCLASS64) {
		*err = perch_xasprintf("%s is not a 64-bit ELF file (only those are read)", path);
		goto out;
	}
	Elf64_Ehdr eh;
	memcpy(&eh, data, sizeof eh);
	if (eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    !in_file(len, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr))) {
		*err = perch_xasprintf("%s: bad section header table", path);
		goto out;
	}
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, data + eh.e_shoff + (uint64_t)i * sizeof sh, sizeof sh);
		if (sh.sh_type != SHT_DYNSYM)
			continue;
		if (sh.sh_link >= eh.e_shnum || sh.sh_entsize != sizeof(Elf64_Sym) ||
		    !in_file(len, sh.sh_offset, sh.sh_size)) {
			*err = perch_xasprintf("%s: bad .dynsym section", path);
			goto out;
		}
		Elf64_Shdr strs;
		memcpy(&strs, data + eh.e_shoff + (uint64_t)sh.sh_link * sizeof strs, sizeof strs);
		if (!in_file(len, strs.sh_offset, strs.sh_size) || strs.sh_size == 0) {
			*err = perch_xasprintf("%s: bad dynamic string table", path);
			goto out;
		}
		const char *strtab = (const char *)data + strs.sh_offset;
		size_t count = sh.sh_size / sizeof(Elf64_Sym);
		for (size_t k = 1; k < count; k++) {
			Elf64_Sym sym;
			memcpy(&sym, data + sh.sh_offset + k * sizeof sym, sizeof sym);
			int bind = ELF64_ST_BIND(sym.st_info), type = ELF64_ST_TYPE(sym.st_info);
			int vis = ELF64_ST_VISIBILITY(sym.st_other);
			if (sym.st_shndx == SHN_UNDEF || type == STT_SECTION || type == STT_FILE)
				continue;
			if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE)
				continue;
			if (vis != STV_DEFAULT && vis != STV_PROTECTED)
				continue;
			if (sym.st_name >= strs.sh_size ||
			    memchr(strtab + sym.st_name, '\0', strs.sh_size - sym.st_name) == NULL)
				continue;
			*names = perch_xrealloc(*names, (*n + 1) * sizeof **names);
			(*names)[(*n)++] = perch_xstrdup(strtab + sym.st_name);
		}
		rc = 0;
		goto out;
	}
	rc = 0; /* no .dynsym: nothing exported at all */
out:
	free(data);
	return rc;
}
