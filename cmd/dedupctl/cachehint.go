package main

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// cacheDirHint adds the way out to a failure to set up the default index
// cache (a home directory that is read-only or missing, as for a service
// account): the operator can put the cache elsewhere.
func cacheDirHint(err error, defaultDir bool) error {
	if err == nil || !defaultDir {
		return err
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) || errors.Is(err, errNoCacheHome) {
		return fmt.Errorf("%w (the default index cache directory cannot be used: give --cache-dir DIR or set DEDUP_CACHE_DIR)", err)
	}
	return err
}

// errNoCacheHome marks a default cache directory that could not be
// derived at all.
var errNoCacheHome = errors.New("no default index cache directory")
