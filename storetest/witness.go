package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

// RunWitness runs the suite for engines that also implement
// cairn.WitnessStore. The stores f opens must implement it.
func RunWitness(t *testing.T, f Factory) {
	t.Run("WitnessConfig", func(t *testing.T) { testWitnessConfig(t, f) })
	t.Run("Cosignatures", func(t *testing.T) { testCosignatures(t, f) })
	t.Run("WitnessStatus", func(t *testing.T) { testWitnessStatus(t, f) })
	t.Run("SigningKeys", func(t *testing.T) { testSigningKeys(t, f) })
}

func openWitness(t *testing.T, f Factory) (cairn.Store, cairn.WitnessStore) {
	t.Helper()
	s, _ := open(t, f)
	ws, ok := s.(cairn.WitnessStore)
	if !ok {
		t.Fatalf("%T does not implement cairn.WitnessStore", s)
	}
	setup(t, s)
	return s, ws
}

func testWitnessConfig(t *testing.T, f Factory) {
	_, ws := openWitness(t, f)
	ctx := t.Context()
	c, err := ws.WitnessConfig(ctx, "acme", "app")
	if err != nil || len(c.Witnesses) != 0 {
		t.Fatalf("unset config = %+v, %v; want zero", c, err)
	}
	if _, err := ws.WitnessConfig(ctx, "acme", "nope"); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("config of a missing context: %v, want not_found", err)
	}
	want := cairn.WitnessConfig{Witnesses: []cairn.Witness{{URL: "https://w1.example/", Key: "w1+01020304+BAAA"}},
		Quorum: 1, Policy: cairn.WitnessFailClosed}
	if err := ws.SetWitnessConfig(ctx, "acme", "app", want); err != nil {
		t.Fatal(err)
	}
	got, err := ws.WitnessConfig(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("config round trip (-want +got):\n%s", d)
	}
	refs, err := ws.WitnessedContexts(ctx)
	if err != nil || len(refs) != 1 || refs[0] != (cairn.ContextRef{Org: "acme", Context: "app"}) {
		t.Fatalf("witnessed contexts = %v, %v", refs, err)
	}
	if err := ws.SetWitnessConfig(ctx, "acme", "app", cairn.WitnessConfig{Policy: cairn.WitnessFailOpen}); err != nil {
		t.Fatal(err)
	}
	if refs, err := ws.WitnessedContexts(ctx); err != nil || len(refs) != 0 {
		t.Fatalf("witnessed contexts after clearing = %v, %v", refs, err)
	}
}

func testCosignatures(t *testing.T, f Factory) {
	s, ws := openWitness(t, f)
	ctx := t.Context()
	note := func(size int64) []byte { return []byte("o\n" + string(rune('0'+size)) + "\nroot\n\n— o sig\n") }
	for _, size := range []int64{1, 2, 3} {
		if err := s.AddCheckpoint(ctx, "acme", "app", &cairn.Checkpoint{Size: size, Root: [32]byte{byte(size)},
			Note: note(size), SignedAt: time.Unix(int64(size), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	cos := func(w string) cairn.Cosignature {
		return cairn.Cosignature{Witness: w, Line: []byte("— " + w + " c2ln\n"), Time: time.Unix(100, 0)}
	}
	if err := ws.AddCosignatures(ctx, "acme", "app", 9, []cairn.Cosignature{cos("w1")}); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("cosign a missing checkpoint: %v, want not_found", err)
	}
	if err := ws.AddCosignatures(ctx, "acme", "app", 2, []cairn.Cosignature{cos("w1"), cos("w2")}); err != nil {
		t.Fatal(err)
	}
	// A repeated cosignature is ignored; a new one is appended.
	if err := ws.AddCosignatures(ctx, "acme", "app", 2, []cairn.Cosignature{cos("w1")}); err != nil {
		t.Fatal(err)
	}
	if err := ws.AddCosignatures(ctx, "acme", "app", 3, []cairn.Cosignature{cos("w2")}); err != nil {
		t.Fatal(err)
	}
	latest, err := s.LatestCheckpoint(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if want := string(note(3)) + "— w2 c2ln\n"; string(latest.Note) != want {
		t.Fatalf("latest note = %q, want %q", latest.Note, want)
	}
	cp, err := ws.LatestCosignedCheckpoint(ctx, "acme", "app", []string{"w1", "w2"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(note(2)) + "— w1 c2ln\n— w2 c2ln\n"; cp.Size != 2 || string(cp.Note) != want || cp.Root != [32]byte{2} {
		t.Fatalf("cosigned checkpoint = size %d note %q, want size 2 note %q", cp.Size, cp.Note, want)
	}
	if cp, err := ws.LatestCosignedCheckpoint(ctx, "acme", "app", []string{"w2"}, 1); err != nil || cp.Size != 3 {
		t.Fatalf("quorum 1 of w2 = %+v, %v; want size 3", cp, err)
	}
	if _, err := ws.LatestCosignedCheckpoint(ctx, "acme", "app", []string{"w3"}, 1); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("quorum of an unknown witness: %v, want not_found", err)
	}
	if cp, err := ws.LatestCosignedCheckpoint(ctx, "acme", "app", nil, 0); err != nil || cp.Size != 3 {
		t.Fatalf("quorum 0 = %+v, %v; want the latest checkpoint", cp, err)
	}
	got, err := ws.Cosigners(ctx, "acme", "app", 2)
	if err != nil || !cmp.Equal(got, []string{"w1", "w2"}) {
		t.Fatalf("cosigners of 2 = %v, %v", got, err)
	}
	if err := ws.AddCosignatures(ctx, "acme", "app", 1, []cairn.Cosignature{{Witness: "w1", Line: []byte("— a b\n— c d\n")}}); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("two lines as one cosignature: %v, want invalid", err)
	}
	// A new checkpoint still refuses sizes at or below the latest one.
	if err := s.AddCheckpoint(ctx, "acme", "app", &cairn.Checkpoint{Size: 3, Root: [32]byte{3}, Note: note(3)}); cairn.ErrorCode(err) != cairn.EConflict {
		t.Fatalf("re-adding checkpoint 3: %v, want conflict", err)
	}
	if !bytes.HasPrefix(latest.Note, note(3)) {
		t.Fatal("the signed note is no longer a prefix of the stored one")
	}
}

func testWitnessStatus(t *testing.T, f Factory) {
	_, ws := openWitness(t, f)
	ctx := t.Context()
	st := cairn.WitnessStatus{Witness: "w1", Size: 5, LastSuccess: time.UnixMicro(1_000_000).UTC()}
	if err := ws.SetWitnessStatus(ctx, "acme", "app", st); err != nil {
		t.Fatal(err)
	}
	st.LastErrorAt, st.LastErrorCode, st.LastError = time.UnixMicro(2_000_000).UTC(), cairn.EUnavailable, "down"
	if err := ws.SetWitnessStatus(ctx, "acme", "app", st); err != nil {
		t.Fatal(err)
	}
	got, err := ws.WitnessStatuses(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]cairn.WitnessStatus{st}, got); d != "" {
		t.Fatalf("statuses (-want +got):\n%s", d)
	}
}

func testSigningKeys(t *testing.T, f Factory) {
	_, ws := openWitness(t, f)
	ctx := t.Context()
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	t1, t2, t3, t4 := time.Unix(10, 0).UTC(), time.Unix(20, 0).UTC(), time.Unix(30, 0).UTC(), time.Unix(40, 0).UTC()
	steps := []struct {
		keys [][]byte
		at   time.Time
		want []cairn.SigningKey
	}{
		{[][]byte{a}, t1, []cairn.SigningKey{{PublicKey: a, AddedAt: t1}}},
		{[][]byte{a}, t2, []cairn.SigningKey{{PublicKey: a, AddedAt: t1}}},
		{[][]byte{a, b}, t2, []cairn.SigningKey{{PublicKey: a, AddedAt: t1}, {PublicKey: b, AddedAt: t2}}},
		{[][]byte{b}, t3, []cairn.SigningKey{{PublicKey: a, AddedAt: t1, RetiredAt: t3}, {PublicKey: b, AddedAt: t2}}},
		// A retired key brought back starts a new period.
		{[][]byte{b, a}, t4, []cairn.SigningKey{{PublicKey: a, AddedAt: t1, RetiredAt: t3}, {PublicKey: b, AddedAt: t2}, {PublicKey: a, AddedAt: t4}}},
	}
	for i, st := range steps {
		got, err := ws.SyncSigningKeys(ctx, st.keys, st.at)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d := cmp.Diff(st.want, got); d != "" {
			t.Fatalf("step %d: history (-want +got):\n%s", i, d)
		}
	}
	got, err := ws.SigningKeys(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("SigningKeys = %v, %v", got, err)
	}
}
