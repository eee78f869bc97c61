package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/restore"
)

// The closing line counts lost directories as what they are, with the
// files the snapshot says they took along, not as one file each.
func TestDamagedErrorCountsSubtrees(t *testing.T) {
	lost := errors.New("blob 42: damaged blob")
	res := &restore.Result{FilesMissing: 3001, Damaged: []restore.Damage{
		{Path: "/srv/app/", Err: lost, Tree: true}, {Path: "/etc/x", Err: lost}}}
	msg := damagedError(res).Error()
	for _, want := range []string{"1 files and 1 directories with everything under them", "3001 of the snapshot's files"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
	res = &restore.Result{FilesMissing: -1, Damaged: []restore.Damage{{Path: "/etc/x", Err: lost}}}
	if msg := damagedError(res).Error(); !strings.HasPrefix(msg, "1 files could not be restored") {
		t.Errorf("single file: %q", msg)
	}
}
