package repo

import (
	"fmt"
	"strconv"
	"strings"
)

// splitAncestor splits "NAME~N" into NAME and N. A name without a trailing
// "~" and decimal digits is not of that form.
func splitAncestor(name string) (base string, n int, ok bool) {
	i := strings.LastIndexByte(name, '~')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false
	}
	digits := name[i+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return "", 0, false
	}
	return name[:i], n, true
}

// findAncestor resolves "NAME~N": the N-th snapshot of the same source
// before the one NAME names, counted in the time order of sns. So
// latest:etc~1 is the snapshot of etc before its latest, whatever NAME
// resolution accepts.
func findAncestor(sns []*Snapshot, base string, n int) (*Snapshot, error) {
	sn, err := FindSnapshot(sns, base)
	if err != nil {
		return nil, err
	}
	var history []*Snapshot // sn's source up to and including sn
	for _, s := range sns {
		if s.Source == sn.Source {
			history = append(history, s)
		}
		if s == sn {
			break
		}
	}
	if n >= len(history) {
		return nil, fmt.Errorf("%s~%d: source %q has only %d snapshots up to %s", base, n, sn.Source, len(history), sn.ID.Short())
	}
	return history[len(history)-1-n], nil
}
