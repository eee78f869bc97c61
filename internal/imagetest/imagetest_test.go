package imagetest

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// The committed fixture must stay what the encrypted-image tests assume:
// a qcow2 that qemu itself reports as encrypted.
func TestLUKSFixture(t *testing.T) {
	RequireQemu(t)
	out, err := exec.Command("qemu-img", "info", "--output=json", LUKS(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format    string `json:"format"`
		Encrypted bool   `json:"encrypted"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || !info.Encrypted {
		t.Fatalf("fixture is %s, encrypted %v", info.Format, info.Encrypted)
	}
}
