package main

import (
	"io"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/google/go-cmp/cmp"
)

func TestServeFlags(t *testing.T) {
	parse := func(t *testing.T, args ...string) (*Main, error) {
		t.Helper()
		m := &Main{Stderr: io.Discard}
		return m, m.ParseFlags(args)
	}
	t.Run("signing keys from the environment", func(t *testing.T) {
		t.Setenv("CAIRN_SIGNING_KEY_FILE", "single.key")
		if m, err := parse(t); err != nil || !cmp.Equal(m.SigningKeyFiles, []string{"single.key"}) {
			t.Fatalf("CAIRN_SIGNING_KEY_FILE: %v, %v", m.SigningKeyFiles, err)
		}
		t.Setenv("CAIRN_SIGNING_KEY_FILES", "new.key, old.key")
		if m, err := parse(t); err != nil || !cmp.Equal(m.SigningKeyFiles, []string{"new.key", "old.key"}) {
			t.Fatalf("CAIRN_SIGNING_KEY_FILES: %v, %v", m.SigningKeyFiles, err)
		}
		// Flags replace the environment.
		m, err := parse(t, "--signing-key-file", "a.key", "--signing-key-file", "b.key")
		if err != nil || !cmp.Equal(m.SigningKeyFiles, []string{"a.key", "b.key"}) {
			t.Fatalf("--signing-key-file twice: %v, %v", m.SigningKeyFiles, err)
		}
	})
	t.Run("store", func(t *testing.T) {
		if m, err := parse(t); err != nil || m.Store != "" {
			t.Fatalf("default store: %q, %v; want the embedded engine", m.Store, err)
		}
		t.Setenv("CAIRN_STORE", "postgres://cairn@db/cairn")
		t.Setenv("CAIRN_STORE_SCHEMA", "audit")
		t.Setenv("CAIRN_SIGNING_KEY_FILE", "shared.key")
		m, err := parse(t)
		if err != nil || m.Store != "postgres://cairn@db/cairn" || m.StoreSchema != "audit" {
			t.Fatalf("store from env: %q %q, %v", m.Store, m.StoreSchema, err)
		}
		m, err = parse(t, "--store", "sqlite", "--store-schema", "")
		if err != nil || m.Store != "" {
			t.Fatalf("--store sqlite: %q, %v", m.Store, err)
		}
	})
	t.Run("checkpoint export", func(t *testing.T) {
		t.Setenv("CAIRN_CHECKPOINT_EXPORT", "dir:/tmp/x")
		t.Setenv("CAIRN_CHECKPOINT_EXPORT_INTERVAL", "5m")
		t.Setenv("CAIRN_CHECKPOINT_EXPORT_TOKEN", "tok")
		m, err := parse(t)
		if err != nil || m.CheckpointExport != "dir:/tmp/x" || m.CheckpointExportInterval != 5*time.Minute || m.CheckpointExportToken != "tok" {
			t.Fatalf("export from env: %+v, %v", m, err)
		}
	})
	t.Run("checkpoint interval", func(t *testing.T) {
		if m, err := parse(t); err != nil || m.CheckpointInterval != merkle.DefaultInterval {
			t.Fatalf("default: %v, %v", m.CheckpointInterval, err)
		}
		t.Setenv("CAIRN_CHECKPOINT_INTERVAL", "1s")
		if m, err := parse(t); err != nil || m.CheckpointInterval != time.Second {
			t.Fatalf("from env: %v, %v", m.CheckpointInterval, err)
		}
		if m, err := parse(t, "--checkpoint-interval", "500ms"); err != nil || m.CheckpointInterval != 500*time.Millisecond {
			t.Fatalf("flag: %v, %v", m.CheckpointInterval, err)
		}
	})
	t.Run("read record delay", func(t *testing.T) {
		if m, err := parse(t); err != nil || m.ReadRecordDelay != ingest.DefaultAuditDelay {
			t.Fatalf("default: %v, %v", m.ReadRecordDelay, err)
		}
		t.Setenv("CAIRN_READ_RECORD_DELAY", "0s")
		if m, err := parse(t); err != nil || m.ReadRecordDelay != 0 {
			t.Fatalf("from env: %v, %v", m.ReadRecordDelay, err)
		}
		if m, err := parse(t, "--read-record-delay", "1s"); err != nil || m.ReadRecordDelay != time.Second {
			t.Fatalf("flag: %v, %v", m.ReadRecordDelay, err)
		}
	})
	t.Run("forward allow-list", func(t *testing.T) {
		t.Setenv("CAIRN_FORWARD_ALLOW_CIDRS", "10.0.0.0/8, 192.168.1.7/24")
		m, err := parse(t)
		if err != nil || len(m.ForwardAllowCIDRs) != 2 || m.ForwardAllowCIDRs[1].String() != "192.168.1.0/24" {
			t.Fatalf("allow-list from env: %v, %v", m.ForwardAllowCIDRs, err)
		}
		m, err = parse(t, "--forward-allow-cidr", "127.0.0.0/8")
		if err != nil || len(m.ForwardAllowCIDRs) != 1 || m.ForwardAllowCIDRs[0].String() != "127.0.0.0/8" {
			t.Fatalf("--forward-allow-cidr replaces the env: %v, %v", m.ForwardAllowCIDRs, err)
		}
	})
	t.Run("compat", func(t *testing.T) {
		m, err := parse(t)
		if err != nil || m.Compat.ReplicatedContext != "replicated" || m.Compat.RetracedBasePath != "/auditlog" || m.Compat.RetracedContext != "retraced" {
			t.Fatalf("defaults: %+v, %v", m.Compat, err)
		}
		t.Setenv("CAIRN_RETRACED_BASE_PATH", "/retraced")
		m, err = parse(t, "--replicated-context", "legacy", "--retraced-context", "vendor")
		if err != nil || m.Compat.ReplicatedContext != "legacy" || m.Compat.RetracedBasePath != "/retraced" || m.Compat.RetracedContext != "vendor" {
			t.Fatalf("set: %+v, %v", m.Compat, err)
		}
	})
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"bad allow cidr", nil, []string{"--forward-allow-cidr", "10.0.0.1"}},
		{"bad allow cidr in env", map[string]string{"CAIRN_FORWARD_ALLOW_CIDRS": "nope"}, nil},
		{"interval without sink", nil, []string{"--checkpoint-export-interval", "1m"}},
		{"sink without interval", nil, []string{"--checkpoint-export", "dir:/tmp/x"}},
		{"bad sink", nil, []string{"--checkpoint-export", "ftp://x", "--checkpoint-export-interval", "1m"}},
		{"negative interval", nil, []string{"--checkpoint-export", "dir:/x", "--checkpoint-export-interval", "-1m"}},
		{"bad interval in env", map[string]string{"CAIRN_CHECKPOINT_EXPORT_INTERVAL": "soon"}, nil},
		{"postgres without a shared key", nil, []string{"--store", "postgres://cairn@db/cairn"}},
		{"postgres from env without a key", map[string]string{"CAIRN_STORE": "postgresql://cairn@db/cairn"}, nil},
		{"schema without postgres", nil, []string{"--store-schema", "cairn"}},
		{"unknown store", nil, []string{"--store", "mysql://db/cairn", "--signing-key-file", "k"}},
		{"checkpoint interval over 1s", nil, []string{"--checkpoint-interval", "2s"}},
		{"zero checkpoint interval", nil, []string{"--checkpoint-interval", "0s"}},
		{"read record delay over 1s", nil, []string{"--read-record-delay", "1500ms"}},
		{"negative read record delay", map[string]string{"CAIRN_READ_RECORD_DELAY": "-1ms"}, nil},
		{"bad checkpoint interval in env", map[string]string{"CAIRN_CHECKPOINT_INTERVAL": "fast"}, nil},
		{"replicated context is the built-in one", nil, []string{"--replicated-context", "cairn"}},
		{"bad retraced context", map[string]string{"CAIRN_RETRACED_CONTEXT": "a b"}, nil},
		{"retraced base path without slash", nil, []string{"--retraced-base-path", "auditlog"}},
		{"retraced base path over the native API", nil, []string{"--retraced-base-path", "/api/v1"}},
		{"retraced base path on a health route", nil, []string{"--retraced-base-path", "/healthz"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := parse(t, c.args...)
			if exitCode(err) != 2 {
				t.Fatalf("error %v (exit %d), want a usage error", err, exitCode(err))
			}
		})
	}
}
