package pathmatch

import (
	"errors"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pat  string
		fold bool
		path string
		want bool
	}{
		{"*.tmp", false, "/var/x.tmp", true},
		{"*.tmp", false, "/var/x.tmp/inner", true},
		{"*.tmp", false, "/var/x.tmpl", false},
		{"cache", false, "/home/u/cache/a/b", true},
		{"cache", false, "/home/u/cachex", false},
		{"/var/cache", false, "/var/cache", true},
		{"/var/cache", false, "/var/cache/apt/x", true},
		{"/var/cache", false, "/srv/var/cache", false},
		{"/var/cache/", false, "/var/cache/apt", true},
		{"/var", false, "/variable", false},
		{"cache/*", false, "/a/cache/x", true},
		{"cache/*", false, "/a/cache", false},
		{"/home/*/.cache", false, "/home/u/.cache/x", true},
		{"/home/*/.cache", false, "/home/u/v/.cache", false},
		{"/home/**/.cache", false, "/home/u/v/.cache", true},
		{"/home/**/.cache", false, "/home/.cache", true},
		{"/var/**", false, "/var/a/b", true},
		{"**/*.log", false, "/a/b/c.log", true},
		{"/", false, "/anything", true},
		{"*.JPG", true, "/p/a.jpg", true},
		{"*.JPG", false, "/p/a.jpg", false},
		{"/Data", true, "/data/x", true},
	}
	for _, c := range cases {
		p, err := Parse(c.pat, c.fold)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.pat, err)
		}
		if got := p.Match(c.path); got != c.want {
			t.Errorf("%q (fold %v) on %q = %v, want %v", c.pat, c.fold, c.path, got, c.want)
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, s := range []string{"", "[", "/a/[b"} {
		if _, err := Parse(s, false); !errors.Is(err, ErrBadPattern) {
			t.Errorf("Parse(%q) = %v, want ErrBadPattern", s, err)
		}
	}
	if _, err := ParseAll([]string{"ok", "["}, false); !errors.Is(err, ErrBadPattern) {
		t.Errorf("ParseAll with a bad pattern = %v", err)
	}
}

func TestList(t *testing.T) {
	l, err := ParseAll([]string{"/tmp", "*.o"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := l.Match("/src/a.o"); !ok || p.String() != "*.o" {
		t.Errorf("List.Match = %v %v", p, ok)
	}
	if _, ok := l.Match("/src/a.c"); ok {
		t.Error("List matched /src/a.c")
	}
}

func TestListMixedCase(t *testing.T) {
	a, _ := ParseAll([]string{"/Var/Cache"}, false)
	b, _ := ParseAll([]string{"*.JPG"}, true)
	l := append(a, b...)
	for name, want := range map[string]bool{"/Var/Cache/x": true, "/var/cache/x": false, "/p/a.jpg": true, "/p/a.JpG": true, "/p/a.png": false} {
		if _, got := l.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}
