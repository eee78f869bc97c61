// Package pathmatch matches absolute slash-separated paths against
// exclude/include patterns with restic's semantics.
//
// A pattern is split into components at '/'. Each component is a
// path.Match glob ('*', '?', '[...]'), except "**", which matches any
// number of components, none included. A pattern that starts with '/' is
// anchored at the root; any other pattern may match starting at any
// component, so "*.tmp" matches every entry whose name ends in .tmp and
// "cache/*" matches the entries of every directory named cache. A pattern
// that matches a directory also matches everything below it: the match
// need not consume the whole path. Trailing slashes are ignored.
package pathmatch
