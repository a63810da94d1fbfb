/*
 * symbols.c - addresses of this process to functions, source files and
 * lines (see internal.h), for profiles (pprof.c) and the trace's stack
 * frames (tsample.c).
 *
 * libdw reports the process's own modules from /proc/self/maps and reads
 * their ELF symbol tables (static functions included, which dladdr would
 * not find) and DWARF line tables. A session reads the maps once: a
 * library loaded after it opened is not known to it.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <unistd.h>

#include "prof/internal.h"

struct prof_syms {
	Dwfl *dwfl;
	Dwfl_Module **mods;
	size_t nmods;
};

static int collect_module(Dwfl_Module *m, void **ud, const char *name, Dwarf_Addr start, void *arg)
{
	(void)ud, (void)name, (void)start;
	struct prof_syms *s = arg;
	Dwfl_Module **q = realloc(s->mods, (s->nmods + 1) * sizeof *q);
	if (!q)
		return DWARF_CB_ABORT;
	s->mods = q;
	s->mods[s->nmods++] = m;
	return DWARF_CB_OK;
}

struct prof_syms *prof_syms_open(void)
{
	static const Dwfl_Callbacks cb = {
		.find_elf = dwfl_linux_proc_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
	};
	struct prof_syms *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->dwfl = dwfl_begin(&cb);
	if (s->dwfl && (dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
			dwfl_report_end(s->dwfl, NULL, NULL) != 0)) {
		dwfl_end(s->dwfl);
		s->dwfl = NULL; /* addresses only */
	}
	if (s->dwfl)
		dwfl_getmodules(s->dwfl, collect_module, s, 0);
	return s;
}

const char *prof_syms_at(struct prof_syms *s, uint64_t a, const char **file, int *line,
			 unsigned *mapping)
{
	*file = NULL;
	*line = 0;
	*mapping = 0;
	Dwfl_Module *m = s && s->dwfl ? dwfl_addrmodule(s->dwfl, a) : NULL;
	if (!m)
		return NULL;
	for (size_t i = 0; i < s->nmods; i++)
		if (s->mods[i] == m)
			*mapping = (unsigned)i + 1;
	Dwfl_Line *ln = dwfl_module_getsrc(m, a);
	if (ln)
		*file = dwfl_lineinfo(ln, NULL, line, NULL, NULL, NULL);
	return dwfl_module_addrname(m, a);
}

const char *prof_syms_function(struct prof_syms *s, uint64_t a, const char **file)
{
	int line;
	unsigned mapping;
	const char *name = prof_syms_at(s, a, file, &line, &mapping);
	Dwfl_Module *m = name ? dwfl_addrmodule(s->dwfl, a) : NULL;
	GElf_Off off;
	GElf_Sym sym;
	/* The scopes at the function's entry: at a, inside inlined code,
	 * libdw's scopes lead to the inlined function's abstract instance,
	 * not to the function that holds it. */
	if (!m || !dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL))
		return name;
	Dwarf_Addr entry = a - off, bias;
	Dwarf_Die *cu = dwfl_module_addrdie(m, entry, &bias);
	Dwarf_Die *scopes = NULL;
	int n = cu ? dwarf_getscopes(cu, entry - bias, &scopes) : 0;
	for (int i = 0; i < n; i++) {
		if (dwarf_tag(&scopes[i]) == DW_TAG_subprogram) {
			const char *f = dwarf_decl_file(&scopes[i]);
			if (f)
				*file = f;
			break;
		}
	}
	free(scopes);
	return name;
}

unsigned prof_syms_modules(const struct prof_syms *s)
{
	return s ? (unsigned)s->nmods : 0;
}

const char *prof_syms_module(struct prof_syms *s, unsigned i, uint64_t *start, uint64_t *end)
{
	Dwarf_Addr lo = 0, hi = 0;
	const char *main_file = NULL;
	const char *name = dwfl_module_info(s->mods[i], NULL, &lo, &hi, NULL, NULL, &main_file, NULL);
	*start = lo;
	*end = hi;
	return main_file ? main_file : name;
}

void prof_syms_close(struct prof_syms *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl); /* the names it gave are gone with it */
	free(s->mods);
	free(s);
}

const char *prof_libdw_version(void)
{
	return dwfl_version(NULL);
}
