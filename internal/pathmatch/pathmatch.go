package pathmatch

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrBadPattern is returned (wrapped) by Parse for a malformed pattern.
var ErrBadPattern = errors.New("malformed pattern")

// Pattern is one parsed pattern.
type Pattern struct {
	raw      string
	anchored bool
	fold     bool
	comps    []string
}

// Parse checks and parses a pattern. With fold set it matches regardless
// of case.
func Parse(pattern string, fold bool) (Pattern, error) {
	p := Pattern{raw: pattern, fold: fold}
	s := strings.TrimRight(pattern, "/")
	if s == "" {
		if pattern == "" {
			return p, fmt.Errorf("empty pattern: %w", ErrBadPattern)
		}
		// "/" alone matches everything.
		return Pattern{raw: pattern, anchored: true, fold: fold}, nil
	}
	if fold {
		s = strings.ToLower(s)
	}
	p.anchored = strings.HasPrefix(s, "/")
	for _, c := range strings.Split(strings.TrimLeft(s, "/"), "/") {
		if c == "" || c == "." {
			continue
		}
		if c != "**" {
			if _, err := path.Match(c, ""); err != nil {
				return p, fmt.Errorf("pattern %q: %w", pattern, ErrBadPattern)
			}
		}
		p.comps = append(p.comps, c)
	}
	return p, nil
}

// String returns the pattern as given.
func (p Pattern) String() string { return p.raw }

// Match reports whether the absolute path p, or one of its ancestors,
// matches the pattern.
func (p Pattern) Match(name string) bool {
	if p.fold {
		name = strings.ToLower(name)
	}
	return p.matchComps(split(name))
}

func (p Pattern) matchComps(comps []string) bool {
	if p.anchored {
		return matchPrefix(p.comps, comps)
	}
	for i := range comps {
		if matchPrefix(p.comps, comps[i:]) {
			return true
		}
	}
	return false
}

func split(name string) []string {
	name = strings.Trim(name, "/")
	if name == "" {
		return nil
	}
	return strings.Split(name, "/")
}

// matchPrefix reports whether pat matches a leading run of comps.
func matchPrefix(pat, comps []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// Try every number of components for "**", fewest first.
			for skip := 0; skip <= len(comps); skip++ {
				if matchPrefix(pat[1:], comps[skip:]) {
					return true
				}
			}
			return false
		}
		if len(comps) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], comps[0]); !ok {
			return false
		}
		pat, comps = pat[1:], comps[1:]
	}
	return true
}

// List is a set of patterns; a path matches the list if it matches any.
type List []Pattern

// ParseAll parses patterns, all with the same case rule.
func ParseAll(patterns []string, fold bool) (List, error) {
	l := make(List, 0, len(patterns))
	for _, s := range patterns {
		p, err := Parse(s, fold)
		if err != nil {
			return nil, err
		}
		l = append(l, p)
	}
	return l, nil
}

// Match returns the first pattern that matches name.
func (l List) Match(name string) (Pattern, bool) {
	if len(l) == 0 {
		return Pattern{}, false
	}
	// Split once per case rule, not once per pattern: the walk asks this
	// for every entry of the tree.
	var comps, folded []string
	for _, p := range l {
		c := &comps
		if p.fold {
			c = &folded
		}
		if *c == nil {
			if p.fold {
				*c = split(strings.ToLower(name))
			} else {
				*c = split(name)
			}
		}
		if p.matchComps(*c) {
			return p, true
		}
	}
	return Pattern{}, false
}
