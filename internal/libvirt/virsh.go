package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ErrUnavailable means libvirt cannot be used on this host: virsh is not
// installed.
var ErrUnavailable = errors.New("libvirt is not available on this host")

// ErrConnect means virsh is installed but could not connect to the
// hypervisor at the configured URI; the error carries libvirt's reason.
var ErrConnect = errors.New("cannot connect to libvirt")

// ErrNoDomain means the named domain is not defined.
var ErrNoDomain = errors.New("no such libvirt domain")

// Virsh runs the virsh command-line client. The zero value runs "virsh"
// from PATH against libvirt's default connection.
type Virsh struct {
	Path string // virsh binary; default "virsh" looked up in PATH
	URI  string // connection URI (virsh -c); default: libvirt's default
}

// Available reports ErrUnavailable when virsh cannot be found.
func (v *Virsh) Available() error {
	if _, err := exec.LookPath(v.bin()); err != nil {
		return fmt.Errorf("%w: %s not found in PATH (install the libvirt client, or back up the disk images with --image)", ErrUnavailable, v.bin())
	}
	return nil
}

func (v *Virsh) uriName() string {
	if v.URI != "" {
		return v.URI
	}
	return "default"
}

func (v *Virsh) bin() string {
	if v.Path != "" {
		return v.Path
	}
	return "virsh"
}

// run executes one virsh command and returns its standard output. The
// error carries virsh's own message, which names the cause.
func (v *Virsh) run(ctx context.Context, args ...string) ([]byte, error) {
	if err := v.Available(); err != nil {
		return nil, err
	}
	full := args
	if v.URI != "" {
		full = append([]string{"-c", v.URI}, args...)
	}
	cmd := exec.CommandContext(ctx, v.bin(), full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("virsh %s: %w", args[0], ctx.Err())
	}
	msg := strings.TrimSpace(stderr.String())
	msg = strings.TrimPrefix(msg, "error: ")
	msg = strings.ReplaceAll(msg, "\nerror: ", "; ")
	switch {
	case strings.Contains(msg, "failed to connect to the hypervisor"):
		// The line after this generic one is libvirt's reason: a wrong URI,
		// a daemon that is not running, a host that does not resolve.
		reason := strings.TrimPrefix(strings.TrimPrefix(msg, "failed to connect to the hypervisor"), "; ")
		if reason == "" {
			reason = msg
		}
		return nil, fmt.Errorf("%w (URI %s): %s", ErrConnect, v.uriName(), reason)
	case strings.Contains(msg, "Domain not found") || strings.Contains(msg, "failed to get domain"):
		return nil, fmt.Errorf("%w: virsh %s: %s", ErrNoDomain, args[0], msg)
	case msg != "":
		return nil, fmt.Errorf("virsh %s: %s", args[0], msg)
	}
	return nil, fmt.Errorf("virsh %s: %w", args[0], err)
}

// DumpXML returns a domain's XML definition. inactive asks for the
// persistent definition rather than the running one.
func (v *Virsh) DumpXML(ctx context.Context, name string, inactive bool) ([]byte, error) {
	args := []string{"dumpxml", name}
	if inactive {
		args = []string{"dumpxml", "--inactive", name}
	}
	return v.run(ctx, args...)
}

// State returns a domain's state as virsh domstate prints it, such as
// "running" or "shut off".
func (v *Virsh) State(ctx context.Context, name string) (string, error) {
	out, err := v.run(ctx, "domstate", name)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// UUID returns a domain's UUID, which names it across connection URIs.
func (v *Virsh) UUID(ctx context.Context, name string) (string, error) {
	out, err := v.run(ctx, "domuuid", name)
	if err != nil {
		return "", err
	}
	uuid := strings.TrimSpace(string(out))
	if uuid == "" {
		return "", fmt.Errorf("virsh domuuid %s: empty answer", name)
	}
	return uuid, nil
}

// AgentResponds reports whether the domain's QEMU guest agent answers a
// ping, which a quiesced snapshot needs.
func (v *Virsh) AgentResponds(ctx context.Context, name string) bool {
	_, err := v.run(ctx, "qemu-agent-command", name, "--timeout", "5", `{"execute":"guest-ping"}`)
	return err == nil
}

// Define defines (or redefines) a domain from an XML file; it is not started.
func (v *Virsh) Define(ctx context.Context, xmlPath string) error {
	_, err := v.run(ctx, "define", xmlPath)
	return err
}

// defineBytes defines a domain from XML held in memory.
func (v *Virsh) defineBytes(ctx context.Context, def []byte) error {
	f, err := os.CreateTemp("", "dedup-domain-*.xml")
	if err != nil {
		return fmt.Errorf("domain definition: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(def)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("domain definition: %w", err)
	}
	return v.Define(ctx, f.Name())
}

// Exists reports whether a domain of that name is defined.
func (v *Virsh) Exists(ctx context.Context, name string) (bool, error) {
	_, err := v.run(ctx, "domstate", name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoDomain):
		return false, nil
	}
	return false, err
}
