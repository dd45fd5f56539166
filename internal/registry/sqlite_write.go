package registry

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
)

// write runs fn in one write transaction, serialized with this store's
// other writers. Driver errors are explained and prefixed with op; the
// store's own errors (ErrInvalid, ErrNotFound, …) pass unchanged, since
// they already name the resource.
func (s *SQLiteStore) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	wrap := func(err error) error {
		var se *sqlite.Error
		if errors.As(err, &se) {
			return fmt.Errorf("%s: %w", op, s.explain(err))
		}
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, s.explain(err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", op, s.explain(err))
	}
	return nil
}

// canonical returns obj as a value of its kind's type (a caller may pass
// a pointer) and the JSON body stored for it.
func canonical(obj Object) (Object, []byte, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", obj.Key(), err)
	}
	v, err := decodeStored(obj.Key().Kind, body)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", obj.Key(), err)
	}
	return v, body, nil
}

// bump moves the global revision and returns its new value, which becomes
// the version of the resource being changed.
func bump(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx, `UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&rev)
	return rev, err
}

func insertAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, who, action, kind, tenant, name, before_hash, after_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		formatTime(e.At), e.Who, e.Action, e.Kind, e.Tenant, e.Name, e.BeforeHash, e.AfterHash)
	return err
}

// Put creates or replaces obj after validating it, its references and its
// claims. See Store.Put for ifVersion and managedBy.
func (s *SQLiteStore) Put(ctx context.Context, obj Object, ifVersion int64, managedBy ManagedBy) (Resource, error) {
	if obj == nil {
		return Resource{}, invalidf("no object to store")
	}
	if err := checkManagedBy(managedBy); err != nil {
		return Resource{}, err
	}
	if ifVersion < AnyVersion {
		return Resource{}, invalidf("ifVersion %d is not AnyVersion, CreateOnly or a stored version", ifVersion)
	}
	if err := obj.Validate(); err != nil {
		return Resource{}, err
	}
	obj, body, err := canonical(obj)
	if err != nil {
		return Resource{}, err
	}
	who := actor(ctx, string(managedBy))
	var res Resource
	err = s.write(ctx, "writing "+obj.Key().String(), func(tx *sql.Tx) error {
		var changed bool
		var err error
		res, changed, err = s.upsert(ctx, tx, obj, body, ifVersion, managedBy, who)
		if err != nil || !changed {
			return err
		}
		return checkLinks(ctx, tx, obj)
	})
	if err != nil {
		return Resource{}, err
	}
	return res, nil
}

// upsert writes obj's row, audit entry and references, after checking
// ifVersion and ownership. It removes obj's claims but leaves inserting the
// new ones, and checking the references, to the caller, which may still
// have other objects to write first. changed is false when the stored row
// already had this body and owner; nothing is written then.
func (s *SQLiteStore) upsert(ctx context.Context, tx *sql.Tx, obj Object, body []byte, ifVersion int64, managedBy ManagedBy, who string) (Resource, bool, error) {
	k := obj.Key()
	old, found, err := getRow(ctx, tx, k)
	if err != nil {
		return Resource{}, false, err
	}
	switch {
	case !found && ifVersion > 0:
		return Resource{}, false, fmt.Errorf("%s: %w (it was expected at version %d: somebody deleted it)", k, ErrNotFound, ifVersion)
	case found && ifVersion == CreateOnly:
		return Resource{}, false, fmt.Errorf("%s: %w (version %d)", k, ErrAlreadyExists, old.version)
	case found && ifVersion > 0 && old.version != ifVersion:
		return Resource{}, false, fmt.Errorf("%s: %w: it is at version %d, not %d; read it again and reapply the change", k, ErrVersionConflict, old.version, ifVersion)
	case found && old.managedBy == ManagedByFile && managedBy == ManagedByAPI:
		return Resource{}, false, fileManaged(k)
	}
	if found && old.managedBy == managedBy && bytes.Equal(old.body, body) {
		res, err := old.resource()
		return res, false, err
	}
	version, err := bump(ctx, tx)
	if err != nil {
		return Resource{}, false, err
	}
	now := time.Now().UTC()
	entry := AuditEntry{Who: who, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, AfterHash: hashBody(body), At: now}
	created := now
	if found {
		if created, err = parseTime(old.created); err != nil {
			return Resource{}, false, fmt.Errorf("reading %s: created_at: %w", k, err)
		}
		entry.Action, entry.BeforeHash = ActionUpdate, hashBody(old.body)
		_, err = tx.ExecContext(ctx, `UPDATE resources SET version = ?, managed_by = ?, body = ?, updated_at = ?
			WHERE kind = ? AND tenant = ? AND name = ?`,
			version, managedBy, string(body), formatTime(now), k.Kind, k.Tenant, k.Name)
	} else {
		entry.Action = ActionCreate
		_, err = tx.ExecContext(ctx, `INSERT INTO resources (kind, tenant, name, version, managed_by, body, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			k.Kind, k.Tenant, k.Name, version, managedBy, string(body), formatTime(now), formatTime(now))
	}
	if err != nil {
		return Resource{}, false, err
	}
	if err := insertAudit(ctx, tx, entry); err != nil {
		return Resource{}, false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM refs WHERE from_kind = ? AND from_tenant = ? AND from_name = ?`, k.Kind, k.Tenant, k.Name); err != nil {
		return Resource{}, false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM claims WHERE owner_kind = ? AND tenant = ? AND owner_name = ?`, k.Kind, k.Tenant, k.Name); err != nil {
		return Resource{}, false, err
	}
	for _, l := range obj.links().refs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO refs (from_kind, from_tenant, from_name, field, to_kind, to_tenant, to_name)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, k.Kind, k.Tenant, k.Name, l.field, l.to.Kind, l.to.Tenant, l.to.Name); err != nil {
			return Resource{}, false, err
		}
	}
	res, err := decodeStored(k.Kind, body)
	if err != nil {
		return Resource{}, false, err
	}
	return Resource{Object: res, Version: version, ManagedBy: managedBy, CreatedAt: created, UpdatedAt: now}, true, nil
}

func fileManaged(k Key) error {
	return fmt.Errorf("%s: %w; edit the file instead (the admin API does not change file-managed resources)", k, ErrFileManaged)
}

// checkLinks reserves obj's claims and checks its references, reporting
// the problems of both at once.
func checkLinks(ctx context.Context, tx *sql.Tx, obj Object) error {
	claimsErr := insertClaims(ctx, tx, obj)
	var ve *ValidationError
	if claimsErr != nil && !errors.As(claimsErr, &ve) {
		return claimsErr
	}
	return mergeProblems(claimsErr, checkRefs(ctx, tx, obj))
}

// insertClaims reserves obj's claimed values in its tenant, failing with
// every value another resource already holds.
func insertClaims(ctx context.Context, tx *sql.Tx, obj Object) error {
	k := obj.Key()
	p := problems{key: k}
	for _, c := range obj.links().claims {
		var ownerKind Kind
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT owner_kind, owner_name FROM claims WHERE tenant = ? AND namespace = ? AND value = ?`,
			k.Tenant, c.namespace, c.value).Scan(&ownerKind, &owner)
		switch {
		case err == nil:
			p.add(c.field, "%s", claimConflict(obj, c, owner))
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO claims (tenant, namespace, value, owner_kind, owner_name, field)
			VALUES (?, ?, ?, ?, ?, ?)`, k.Tenant, c.namespace, c.value, k.Kind, k.Name, c.field); err != nil {
			return err
		}
	}
	return p.err()
}

func claimConflict(obj Object, c claim, owner string) string {
	switch c.namespace {
	case claimFingerprint:
		return fmt.Sprintf("this certificate fingerprint is already registered to application %q", owner)
	case claimAPIKeyHash:
		return fmt.Sprintf("this API key hash is already registered to application %q", owner)
	case claimClientID:
		return fmt.Sprintf("client id %q is already used by application %q", c.value, owner)
	case claimSubscription:
		if sub, ok := obj.(Subscription); ok {
			return fmt.Sprintf("application %q already subscribes to api %q through subscription %q; change that subscription's plan instead", sub.Application, sub.API, owner)
		}
	}
	return fmt.Sprintf("%q is already claimed by %q", c.value, owner)
}

// checkRefs fails with every reference of obj whose target does not exist.
func checkRefs(ctx context.Context, tx *sql.Tx, obj Object) error {
	p := problems{key: obj.Key()}
	for _, l := range obj.links().refs {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM resources WHERE kind = ? AND tenant = ? AND name = ?`,
			l.to.Kind, l.to.Tenant, l.to.Name).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows) && l.to.Kind == KindTenant:
			p.add(l.field, "unknown tenant %q: create the tenant first", l.to.Name)
		case errors.Is(err, sql.ErrNoRows):
			p.add(l.field, "unknown %s", l.to)
		case err != nil:
			return err
		}
	}
	return p.err()
}

// checkReferrers fails when another resource still refers to k, naming the
// first referrer and counting the rest. verb says what was refused.
func checkReferrers(ctx context.Context, tx *sql.Tx, k Key, verb string) error {
	var from Key
	var field string
	err := tx.QueryRowContext(ctx, `SELECT from_kind, from_tenant, from_name, field FROM refs
		WHERE to_kind = ? AND to_tenant = ? AND to_name = ? ORDER BY from_kind, from_tenant, from_name, field LIMIT 1`,
		k.Kind, k.Tenant, k.Name).Scan(&from.Kind, &from.Tenant, &from.Name, &field)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM refs WHERE to_kind = ? AND to_tenant = ? AND to_name = ?`,
		k.Kind, k.Tenant, k.Name).Scan(&n); err != nil {
		return err
	}
	more := ""
	if n > 1 {
		more = fmt.Sprintf(" (and %d more references)", n-1)
	}
	return invalidf("cannot %s %s: %s refers to it in field %s%s; change or delete the referrer first",
		verb, k, from, field, more)
}

// deleteRow removes k with its references and claims, and audits it.
func deleteRow(ctx context.Context, tx *sql.Tx, old row, who string) error {
	k := old.key
	if _, err := tx.ExecContext(ctx, `DELETE FROM resources WHERE kind = ? AND tenant = ? AND name = ?`, k.Kind, k.Tenant, k.Name); err != nil {
		return err
	}
	if _, err := bump(ctx, tx); err != nil {
		return err
	}
	return insertAudit(ctx, tx, AuditEntry{
		Who: who, Action: ActionDelete, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name,
		BeforeHash: hashBody(old.body), At: time.Now().UTC(),
	})
}

// Delete removes an API-managed resource that nothing refers to. See
// Store.Delete.
func (s *SQLiteStore) Delete(ctx context.Context, kind Kind, tenant, name string, ifVersion int64) error {
	if err := checkScope(kind, tenant, false); err != nil {
		return err
	}
	if ifVersion != AnyVersion && ifVersion < 1 {
		return invalidf("ifVersion %d is not AnyVersion or a stored version", ifVersion)
	}
	k := Key{Kind: kind, Tenant: tenant, Name: name}
	who := actor(ctx, string(ManagedByAPI))
	return s.write(ctx, "deleting "+k.String(), func(tx *sql.Tx) error {
		old, found, err := getRow(ctx, tx, k)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("%s: %w", k, ErrNotFound)
		case ifVersion > 0 && old.version != ifVersion:
			return fmt.Errorf("%s: %w: it is at version %d, not %d; read it again before deleting", k, ErrVersionConflict, old.version, ifVersion)
		case old.managedBy == ManagedByFile:
			return fileManaged(k)
		}
		if err := checkReferrers(ctx, tx, k, "delete"); err != nil {
			return err
		}
		return deleteRow(ctx, tx, old, who)
	})
}

// ApplyFile makes the file-managed resources exactly objs. See
// Store.ApplyFile.
func (s *SQLiteStore) ApplyFile(ctx context.Context, objs []Object) (int, error) {
	// norm holds the objects as values, leaving the caller's slice alone.
	norm := make([]Object, len(objs))
	bodies := make([][]byte, len(objs))
	inFile := make(map[Key]bool, len(objs))
	var errs []error
	for i, obj := range objs {
		if obj == nil {
			errs = append(errs, invalidf("resource %d of the file is empty", i))
			continue
		}
		k := obj.Key()
		if inFile[k] {
			errs = append(errs, invalidf("%s is declared twice in the file", k))
		}
		inFile[k] = true
		if err := obj.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		obj, b, err := canonical(obj)
		if err != nil {
			errs = append(errs, err)
		}
		norm[i], bodies[i] = obj, b
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	who := actor(ctx, string(ManagedByFile))
	n := 0
	err := s.write(ctx, "applying the configuration file's resources", func(tx *sql.Tx) error {
		n = 0
		var changed []Object
		for i, obj := range norm {
			_, ch, err := s.upsert(ctx, tx, obj, bodies[i], AnyVersion, ManagedByFile, who)
			if err != nil {
				return err
			}
			if ch {
				changed = append(changed, obj)
			}
		}
		n = len(changed)
		pruned, err := s.prune(ctx, tx, inFile, who)
		if err != nil {
			return err
		}
		n += len(pruned)
		// Checks run once every row is in its final state, so the file
		// may list resources in any order.
		var errs []error
		for _, k := range pruned {
			if err := checkReferrers(ctx, tx, k, "remove from the file"); err != nil {
				errs = append(errs, err)
			}
		}
		for _, obj := range changed {
			if err := checkLinks(ctx, tx, obj); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// prune deletes the file-managed rows that the file no longer declares.
func (s *SQLiteStore) prune(ctx context.Context, tx *sql.Tx, inFile map[Key]bool, who string) ([]Key, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+selectColumns+` FROM resources WHERE managed_by = ? ORDER BY kind, tenant, name`, ManagedByFile)
	if err != nil {
		return nil, err
	}
	var gone []row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			_ = rows.Close()
			return nil, err
		}
		if !inFile[r.key] {
			gone = append(gone, r)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(gone))
	for _, r := range gone {
		if err := deleteRow(ctx, tx, r, who); err != nil {
			return nil, err
		}
		keys = append(keys, r.key)
	}
	return keys, nil
}

// Audit records an entry written by the admin API itself.
func (s *SQLiteStore) Audit(ctx context.Context, e AuditEntry) error {
	if e.Who == "" || e.Action == "" {
		return invalidf("an audit entry needs who and action")
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	return s.write(ctx, "writing an audit entry", func(tx *sql.Tx) error {
		return insertAudit(ctx, tx, e)
	})
}
