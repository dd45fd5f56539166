package registry

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s)
	want := put(t, s, shopOrders)
	rev, _ := s.Revision(ctx)
	// SQLite gives the WAL the main file's mode, so it stays private too.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("WAL file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	got, err := s.Get(ctx, KindSubscription, "acme", "shop-orders")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart: %+v, %v; want %+v", got, err, want)
	}
	if rev2, _ := s.Revision(ctx); rev2 != rev {
		t.Errorf("revision after restart = %d, want %d", rev2, rev)
	}
	// Versions keep growing from where they were.
	if r := put(t, s, Tenant{Name: "globex"}); r.Version <= rev {
		t.Errorf("new version %d after restart, want above %d", r.Version, rev)
	}
}

func TestCorruptDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content func(t *testing.T) []byte
	}{
		{"not a database", func(*testing.T) []byte { return bytes.Repeat([]byte("this is not a database\n"), 200) }},
		{"SQLite header then garbage", func(*testing.T) []byte {
			return append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xA5}, 8192)...)
		}},
		{"schema page overwritten", func(t *testing.T) []byte {
			path := filepath.Join(t.TempDir(), "good.db")
			s, err := OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			seed(t, s)
			_ = s.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := 100; i < len(b); i++ {
				b[i] = 0xFF
			}
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "registry.db")
			if err := os.WriteFile(path, tc.content(t), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenSQLite(path)
			if err == nil {
				s.Close()
				t.Fatal("OpenSQLite accepted a corrupt file")
			}
			if !errors.Is(err, ErrStoreUnavailable) {
				t.Errorf("error %v does not match ErrStoreUnavailable", err)
			}
			mustContain(t, err, `registry database "`+path+`" is not a SQLite database or is corrupt`)
		})
	}
}

func TestLockedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a write while another connection holds the lock", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "registry.db")
		s, err := OpenSQLite(path, WithBusyTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		unlock := holdExclusive(t, path)

		start := time.Now()
		_, err = s.Put(ctx, acme, AnyVersion, ManagedByAPI)
		if !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("Put under lock: %v, want ErrStoreUnavailable", err)
		}
		mustContain(t, err, `writing tenant "acme"`, `registry database "`+path+`" is locked by another connection or process`, "100ms")
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("gave up after %v, want about the busy timeout", d)
		}
		// Reads still work in WAL mode while another writer holds the lock.
		if _, err := s.Revision(ctx); err != nil {
			t.Errorf("Revision under lock: %v", err)
		}

		unlock()
		if _, err := s.Put(ctx, acme, AnyVersion, ManagedByAPI); err != nil {
			t.Fatalf("Put after unlock: %v", err)
		}
	})

	t.Run("opening while another process holds the lock", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "registry.db")
		// A rollback-journal database under an exclusive lock cannot even
		// be read, so OpenSQLite cannot switch it to WAL or migrate it.
		unlock := holdExclusive(t, path)
		defer unlock()
		s, err := OpenSQLite(path, WithBusyTimeout(100*time.Millisecond))
		if err == nil {
			s.Close()
			t.Fatal("OpenSQLite succeeded on a locked database")
		}
		if !errors.Is(err, ErrStoreUnavailable) {
			t.Errorf("error %v does not match ErrStoreUnavailable", err)
		}
		mustContain(t, err, `registry database "`+path+`" is locked`)
	})
}

// holdExclusive opens path on a separate connection, as another process
// would, and holds an exclusive write transaction until unlock is called.
func holdExclusive(t *testing.T, path string) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"BEGIN EXCLUSIVE", "CREATE TABLE IF NOT EXISTS lock_holder (x INTEGER)", "INSERT INTO lock_holder VALUES (1)"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	done := false
	unlock = func() {
		if done {
			return
		}
		done = true
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		_ = conn.Close()
		_ = db.Close()
	}
	t.Cleanup(unlock)
	return unlock
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := OpenSQLite(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty path: %v, want ErrInvalid", err)
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "registry.db")
	_, err := OpenSQLite(missing)
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("missing directory: %v, want ErrStoreUnavailable", err)
	}
	mustContain(t, err, missing)
}
