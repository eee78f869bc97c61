package libvirt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// NewDisk is where a restored disk now lives.
type NewDisk struct {
	Path   string
	Format string // "raw" or "qcow2"
	Block  bool   // a block device (type='block', source dev=); else a file
}

// Rewrite options for a restored definition.
type Rewrite struct {
	Name  string             // new domain name; "" keeps the stored one
	Disks map[string]NewDisk // by target device
	// Beside drops the UUID and the interfaces' MAC addresses, so the
	// restored domain can be defined next to the original; libvirt
	// assigns new ones.
	Beside bool
	// NVRAM is the restored UEFI variable store. Empty with Beside drops
	// the stored path, so libvirt gives the copy a fresh store from the
	// firmware's template rather than sharing the original's.
	NVRAM string
	// Partial leaves disks that Disks does not name as they are.
	Partial bool
}

// edit replaces in[start:end] with text.
type edit struct {
	start, end int64
	text       string
}

// pendingDisk collects the edits of one <disk> until its target is known:
// <source> usually comes before <target>.
type pendingDisk struct {
	startTag         edit
	startAttrs       []xml.Attr
	startName        string
	source, driver   *edit
	sourceAttrs      []xml.Attr
	driverAttrs      []xml.Attr
	sourceSelfClosed bool
	driverSelfClosed bool
	dev              string
	drop             []edit // backing chain elements, meaningless for a flattened image
}

// RewriteDefinition returns a copy of a domain definition pointing at
// restored disks. Only the touched elements change; everything else,
// comments and namespaced metadata included, is kept byte for byte. Every
// file or block disk must have a new location in rw.Disks.
func RewriteDefinition(def []byte, rw Rewrite) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(def))
	var (
		edits []edit
		stack []string
		disk  *pendingDisk
		done  = map[string]bool{}
	)
	for {
		start := dec.InputOffset()
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse domain XML: %w", err)
		}
		end := dec.InputOffset()
		raw := string(def[start:end])
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			path := strings.Join(stack, "/")
			self := strings.HasSuffix(raw, "/>")
			switch {
			case path == "domain/uuid" && rw.Beside:
				edits = append(edits, skipElement(dec, start, &stack)...)
			case path == "domain/os/nvram/source" && (rw.NVRAM != "" || rw.Beside):
				if attr(t.Attr, "file") != "" {
					edits = append(edits, nvramSourceEdit(start, end, t.Attr, strings.HasSuffix(raw, "/>"), rw.NVRAM))
				}
			case path == "domain/devices/interface/mac" && rw.Beside:
				edits = append(edits, skipElement(dec, start, &stack)...)
			case path == "domain/devices/disk":
				disk = &pendingDisk{startTag: edit{start: start, end: end}, startAttrs: t.Attr, startName: rawName(t.Name)}
				if attr(t.Attr, "device") != "" && attr(t.Attr, "device") != "disk" {
					disk = nil
				}
			case disk != nil && path == "domain/devices/disk/source":
				disk.source, disk.sourceAttrs, disk.sourceSelfClosed = &edit{start: start, end: end}, t.Attr, self
			case disk != nil && path == "domain/devices/disk/driver":
				disk.driver, disk.driverAttrs, disk.driverSelfClosed = &edit{start: start, end: end}, t.Attr, self
			case disk != nil && path == "domain/devices/disk/target":
				disk.dev = attr(t.Attr, "dev")
			case disk != nil && path == "domain/devices/disk/backingStore":
				disk.drop = append(disk.drop, skipElement(dec, start, &stack)...)
			}
		case xml.EndElement:
			path := strings.Join(stack, "/")
			if path == "domain/devices/disk" && disk != nil {
				if _, listed := rw.Disks[disk.dev]; listed || !rw.Partial {
					es, err := disk.rewrite(rw)
					if err != nil {
						return nil, err
					}
					edits = append(edits, es...)
					done[disk.dev] = true
				}
				disk = nil
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if strings.Join(stack, "/") == "domain/os/nvram" && strings.TrimSpace(string(t)) != "" && (rw.NVRAM != "" || rw.Beside) {
				var b strings.Builder
				xml.EscapeText(&b, []byte(rw.NVRAM))
				edits = append(edits, edit{start: start, end: end, text: b.String()})
			}
			if len(stack) == 2 && stack[0] == "domain" && stack[1] == "name" && rw.Name != "" {
				var b strings.Builder
				xml.EscapeText(&b, []byte(rw.Name))
				edits = append(edits, edit{start: start, end: end, text: b.String()})
			}
		}
	}
	for dev := range rw.Disks {
		if !done[dev] {
			return nil, fmt.Errorf("domain XML has no disk %s", dev)
		}
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	pos := int64(0)
	for _, e := range edits {
		if e.start < pos {
			return nil, fmt.Errorf("rewrite domain XML: overlapping edits at byte %d", e.start)
		}
		out.Write(def[pos:e.start])
		out.WriteString(e.text)
		pos = e.end
	}
	out.Write(def[pos:])
	return out.Bytes(), nil
}

// skipElement consumes the rest of an element that opened at start and
// returns the edit deleting it. A self-closing element still yields its
// end token from RawToken.
func skipElement(dec *xml.Decoder, start int64, stack *[]string) []edit {
	for depth := 1; depth > 0; {
		tok, err := dec.RawToken()
		if err != nil {
			return nil
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	*stack = (*stack)[:len(*stack)-1]
	return []edit{{start: start, end: dec.InputOffset()}}
}

// nvramSourceEdit points <nvram><source file=.../></nvram> (the newer
// form) at path, or drops the file attribute when path is empty.
func nvramSourceEdit(start, end int64, as []xml.Attr, self bool, path string) edit {
	as = removeAttr(as, "file")
	if path != "" {
		as = setAttr(as, "file", path)
	}
	return edit{start: start, end: end, text: startTag("source", as, self)}
}

func (p *pendingDisk) rewrite(rw Rewrite) ([]edit, error) {
	nd, ok := rw.Disks[p.dev]
	if !ok {
		return nil, fmt.Errorf("no restored image for disk %s", p.dev)
	}
	if p.source == nil {
		return nil, fmt.Errorf("disk %s has no source element", p.dev)
	}
	edits := append([]edit(nil), p.drop...)
	typ, attrName, other := "file", "file", "dev"
	if nd.Block {
		typ, attrName, other = "block", "dev", "file"
	}
	edits = append(edits, edit{start: p.startTag.start, end: p.startTag.end,
		text: startTag(p.startName, setAttr(p.startAttrs, "type", typ), false)})
	src := setAttr(removeAttr(p.sourceAttrs, other), attrName, nd.Path)
	edits = append(edits, edit{start: p.source.start, end: p.source.end, text: startTag("source", src, p.sourceSelfClosed)})
	if p.driver != nil && nd.Format != "" {
		edits = append(edits, edit{start: p.driver.start, end: p.driver.end,
			text: startTag("driver", setAttr(p.driverAttrs, "type", nd.Format), p.driverSelfClosed)})
	}
	return edits, nil
}

func rawName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func attr(as []xml.Attr, name string) string {
	for _, a := range as {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func setAttr(as []xml.Attr, name, value string) []xml.Attr {
	out := append([]xml.Attr(nil), as...)
	for i := range out {
		if out[i].Name.Space == "" && out[i].Name.Local == name {
			out[i].Value = value
			return out
		}
	}
	return append(out, xml.Attr{Name: xml.Name{Local: name}, Value: value})
}

func removeAttr(as []xml.Attr, name string) []xml.Attr {
	var out []xml.Attr
	for _, a := range as {
		if a.Name.Space != "" || a.Name.Local != name {
			out = append(out, a)
		}
	}
	return out
}

func startTag(name string, as []xml.Attr, self bool) string {
	var b strings.Builder
	b.WriteString("<" + name)
	for _, a := range as {
		b.WriteString(" " + rawName(a.Name) + "='")
		xml.EscapeText(&b, []byte(a.Value))
		b.WriteString("'")
	}
	if self {
		b.WriteString("/>")
	} else {
		b.WriteString(">")
	}
	return b.String()
}
