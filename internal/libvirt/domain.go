package libvirt

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// Disk is one disk of a domain that is backed up as an image.
type Disk struct {
	Target string // guest device name, such as "vda"; names the image in the snapshot
	Source string // image file or block device on the host
	Format string // driver type, such as "qcow2" or "raw"
	Type   string // "file" or "block"
}

// domainXML is the part of a libvirt domain definition read here.
type domainXML struct {
	Name string `xml:"name"`
	UUID string `xml:"uuid"`
	OS   struct {
		NVRAM struct {
			Path     string `xml:",chardata"`
			Template string `xml:"template,attr"`
			Source   struct {
				File string `xml:"file,attr"`
			} `xml:"source"`
		} `xml:"nvram"`
	} `xml:"os"`
	Devices struct {
		Disks []struct {
			Type   string `xml:"type,attr"`
			Device string `xml:"device,attr"`
			Driver struct {
				Type string `xml:"type,attr"`
			} `xml:"driver"`
			Source struct {
				File     string `xml:"file,attr"`
				Dev      string `xml:"dev,attr"`
				Protocol string `xml:"protocol,attr"`
			} `xml:"source"`
			Target struct {
				Dev string `xml:"dev,attr"`
			} `xml:"target"`
			BackingStore struct {
				Source struct {
					File string `xml:"file,attr"`
					Dev  string `xml:"dev,attr"`
				} `xml:"source"`
			} `xml:"backingStore"`
		} `xml:"disk"`
	} `xml:"devices"`
}

// ParseDisks returns the domain's name and the disks to back up: every
// device="disk" backed by a file or block device. CD-ROMs, floppies and
// empty drives are returned in skipped by target name. A disk that cannot
// be read as an image (a network or pool volume disk) is an error, so a
// backup never leaves out a disk silently.
func ParseDisks(def []byte) (name string, disks []Disk, skipped []string, err error) {
	d, err := parseDomain(def)
	if err != nil {
		return "", nil, nil, err
	}
	if d.Name == "" {
		return "", nil, nil, fmt.Errorf("parse domain XML: no domain name")
	}
	seen := map[string]bool{}
	for _, x := range d.Devices.Disks {
		dev := x.Target.Dev
		if dev == "" {
			return "", nil, nil, fmt.Errorf("domain %s: a disk has no target device", d.Name)
		}
		if seen[dev] {
			return "", nil, nil, fmt.Errorf("domain %s: two disks with target %s", d.Name, dev)
		}
		seen[dev] = true
		if x.Device != "" && x.Device != "disk" {
			skipped = append(skipped, dev)
			continue
		}
		src := x.Source.File
		if x.Type == "block" {
			src = x.Source.Dev
		}
		switch {
		case x.Type != "file" && x.Type != "block":
			return "", nil, nil, fmt.Errorf("domain %s: disk %s is of type %q; only file and block disks can be backed up", d.Name, dev, x.Type)
		case src == "":
			skipped = append(skipped, dev)
			continue
		}
		disks = append(disks, Disk{Target: dev, Source: src, Format: x.Driver.Type, Type: x.Type})
	}
	return d.Name, disks, skipped, nil
}

func parseDomain(def []byte) (*domainXML, error) {
	var d domainXML
	if err := xml.NewDecoder(bytes.NewReader(def)).Decode(&d); err != nil {
		return nil, fmt.Errorf("parse domain XML: %w", err)
	}
	return &d, nil
}

// ParseNVRAM returns the path of the domain's UEFI variable store, or ""
// when it has none (BIOS firmware).
func ParseNVRAM(def []byte) (string, error) {
	d, err := parseDomain(def)
	if err != nil {
		return "", err
	}
	if d.OS.NVRAM.Source.File != "" {
		return d.OS.NVRAM.Source.File, nil
	}
	return strings.TrimSpace(d.OS.NVRAM.Path), nil
}

// backingOf names the image below the top of disk dev's chain, for
// reports; "" when the definition does not say.
func backingOf(def []byte, dev string) string {
	d, err := parseDomain(def)
	if err != nil {
		return ""
	}
	for _, x := range d.Devices.Disks {
		if x.Target.Dev == dev {
			if x.BackingStore.Source.File != "" {
				return x.BackingStore.Source.File
			}
			return x.BackingStore.Source.Dev
		}
	}
	return ""
}
