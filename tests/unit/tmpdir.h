/*  tmpdir.h: removing the scratch directory of a unit test that opens a real store. The
    including file defines _XOPEN_SOURCE 700 (or _GNU_SOURCE) before its first include, for nftw. */
#ifndef TMPDIR_H
#define TMPDIR_H

#if !defined(_GNU_SOURCE) && (!defined(_XOPEN_SOURCE) || _XOPEN_SOURCE < 500)
#error "define _XOPEN_SOURCE 700 before the first include"
#endif

#include <ftw.h>
#include <stdio.h>

static int
test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/*  Remove dir and everything below it; a test's last step, so errors are ignored. */
static inline void
test_rmtree(const char *dir)
{
    nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
