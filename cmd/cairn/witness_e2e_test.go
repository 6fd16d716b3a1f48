package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn/httpapi"
	"github.com/cairn-audit/cairn/witness/witnesstest"
	"golang.org/x/mod/sumdb/note"
)

// opensWith reports whether the note verifies with vkey alone.
func opensWith(t *testing.T, msg []byte, vkey string) bool {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = note.Open(msg, note.VerifierList(v))
	return err == nil
}

// TestKeyRotationEndToEnd rotates the signing key with the real binary:
// keys add-signing, an overlap with the old key primary, then the new one
// primary, then the old key retired.
func TestKeyRotationEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startServer(t, dir)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p, "app", `{"action":"a.one"}`, httpapi.WriteOptions{})
	oldKey, err := p.client.VerifierKey(ctx, "default", "app")
	if err != nil {
		t.Fatal(err)
	}
	if !opensWith(t, waitCheckpoint(t, p, "app", 1), oldKey) {
		t.Fatal("the first checkpoint does not verify with /key")
	}
	p.stop()

	out, err := p.cli(t, "", "keys", "add-signing", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`wrote (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys add-signing printed %q", out)
	}
	newFile, oldFile := m[1], filepath.Join(dir, "signing.key")
	if fi, err := os.Stat(newFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v, %v", fi, err)
	}

	// Overlap, old key primary: both sign; /key is still the old key.
	p = startServer(t, dir, "--signing-key-file", oldFile, "--signing-key-file", newFile)
	mustWrite(t, p, "app", `{"action":"a.two"}`, httpapi.WriteOptions{})
	cp := waitCheckpoint(t, p, "app", 2)
	if k, _ := p.client.VerifierKey(ctx, "default", "app"); k != oldKey {
		t.Fatalf("/key during the overlap = %s, want the old key", k)
	}
	keys, err := p.client.Keys(ctx, "default", "app")
	if err != nil || len(keys.Keys) != 2 || !keys.Keys[0].Primary || !keys.Keys[1].Signing || keys.Keys[1].Primary {
		t.Fatalf("keys during the overlap = %+v, %v", keys, err)
	}
	newKey := keys.Keys[1].VerifierKey
	if !opensWith(t, cp, oldKey) || !opensWith(t, cp, newKey) {
		t.Fatalf("an overlap checkpoint must verify with either key alone:\n%s", cp)
	}
	p.stop()

	// Overlap, new key primary.
	p = startServer(t, dir, "--signing-key-file", newFile, "--signing-key-file", oldFile)
	if k, _ := p.client.VerifierKey(ctx, "default", "app"); k != newKey {
		t.Fatalf("/key with the new key primary = %s, want %s", k, newKey)
	}
	p.stop()

	// After: the old key is retired and no longer signs.
	p = startServer(t, dir, "--signing-key-file", newFile)
	mustWrite(t, p, "app", `{"action":"a.three"}`, httpapi.WriteOptions{})
	cp = waitCheckpoint(t, p, "app", 3)
	if opensWith(t, cp, oldKey) || !opensWith(t, cp, newKey) {
		t.Fatalf("after the rotation a checkpoint must verify with the new key only:\n%s", cp)
	}
	keys, err = p.client.Keys(ctx, "default", "app")
	if err != nil || len(keys.Keys) != 2 || keys.Keys[0].RetiredAt == nil || keys.Keys[0].Signing ||
		!keys.Keys[1].Primary || keys.Keys[0].VerifierKey != oldKey {
		t.Fatalf("keys after the rotation = %+v, %v", keys, err)
	}
}

// TestWitnessEndToEnd configures an in-process witness on a context of the
// real binary and exports checkpoints to a directory.
func TestWitnessEndToEnd(t *testing.T) {
	dir, exportDir := t.TempDir(), t.TempDir()
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startServer(t, dir, "--checkpoint-export", "dir:"+exportDir, "--checkpoint-export-interval", "100ms")
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	vkey, _ := p.client.VerifierKey(ctx, "default", "app")
	origin := "cairn.local/default/app"
	w := witnesstest.New(t, "witness.test")
	w.AddLog(t, origin, vkey)
	v, err := p.client.PatchContext(ctx, "default", "app", map[string]any{
		"witnesses":      []map[string]string{{"url": w.URL, "key": w.VKey}},
		"witness_policy": "fail-closed",
	})
	if err != nil || v.WitnessQuorum != 1 {
		t.Fatalf("patch = %+v, %v", v, err)
	}
	mustWrite(t, p, "app", `[{"action":"a.one"},{"action":"a.two"}]`, httpapi.WriteOptions{})
	cp := waitCheckpoint(t, p, "app", 2)
	cv, err := torchwood.NewCosignatureVerifier(w.VKey)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := note.NewVerifier(vkey)
	policy := torchwood.ThresholdPolicy(3, torchwood.OriginPolicy(origin),
		torchwood.SingleVerifierPolicy(lv), torchwood.SingleVerifierPolicy(cv))
	if _, _, err := torchwood.VerifyCheckpoint(cp, policy); err != nil {
		t.Fatalf("the fail-closed checkpoint is not cosigned: %v\n%s", err, cp)
	}
	// The witness's status is recorded just after its cosignature is
	// stored, so the cosigned checkpoint can be served a moment before it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := p.client.GetContext(ctx, "default", "app")
		if err == nil && got.WitnessStatus != nil && len(got.WitnessStatus.Witnesses) == 1 &&
			got.WitnessStatus.Witnesses[0].LastSuccess != nil && got.WitnessStatus.WitnessedSize != nil {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("context witnessing = %+v", got.WitnessStatus)
		}
	}

	// The exported copy catches up with the published checkpoint.
	deadline := time.Now().Add(30 * time.Second)
	for {
		exported, _ := os.ReadFile(filepath.Join(exportDir, "cairn.local", "default", "app", "checkpoint"))
		if bytes.HasPrefix(exported, []byte(origin+"\n2\n")) && strings.Contains(string(exported), "— witness.test ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exported checkpoint = %q", exported)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h, err := os.ReadFile(filepath.Join(exportDir, "checkpoints.history")); err != nil || len(h) == 0 {
		t.Fatalf("export history: %v", err)
	}
}
