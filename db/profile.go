package db

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Profile is a marketplace user. The job-service owns the data: it sends it
// with every createConversationForJob, and jobchat keeps the latest copy.
type Profile struct {
	bun.BaseModel `bun:"table:profiles,alias:pr"`

	ID          string    `bun:"id,pk"`
	DisplayName string    `bun:"display_name,notnull"`
	AvatarURL   *string   `bun:"avatar_url"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
	UpdatedAt   time.Time `bun:"updated_at,notnull"`
}

// Job is the marketplace job a conversation belongs to.
type Job struct {
	bun.BaseModel `bun:"table:jobs,alias:j"`

	ID        string    `bun:"id,pk"`
	Title     string    `bun:"title,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// UpsertProfile inserts p or refreshes the stored name and avatar.
func UpsertProfile(ctx context.Context, idb bun.IDB, p *Profile) error {
	t := now()
	p.CreatedAt, p.UpdatedAt = t, t
	_, err := idb.NewInsert().Model(p).
		On("CONFLICT (id) DO UPDATE").
		Set("display_name = EXCLUDED.display_name").
		Set("avatar_url = EXCLUDED.avatar_url").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	return mapErr("upsert profile", err)
}

// SelectProfile loads one profile.
func SelectProfile(ctx context.Context, idb bun.IDB, id string) (*Profile, error) {
	p := new(Profile)
	err := idb.NewSelect().Model(p).Where("pr.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("select profile %q", id), err)
	}
	return p, nil
}

// SelectProfiles loads the profiles with the given ids; missing ones are
// simply absent from the map.
func SelectProfiles(ctx context.Context, idb bun.IDB, ids []string) (map[string]*Profile, error) {
	out := make(map[string]*Profile, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var ps []*Profile
	if err := idb.NewSelect().Model(&ps).Where("pr.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, mapErr("select profiles", err)
	}
	for _, p := range ps {
		out[p.ID] = p
	}
	return out, nil
}

// UpsertJob inserts j or refreshes its title.
func UpsertJob(ctx context.Context, idb bun.IDB, j *Job) error {
	t := now()
	j.CreatedAt, j.UpdatedAt = t, t
	_, err := idb.NewInsert().Model(j).
		On("CONFLICT (id) DO UPDATE").
		Set("title = EXCLUDED.title").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	return mapErr("upsert job", err)
}
