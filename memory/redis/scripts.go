package redis

import (
	"embed"

	goredis "github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scripts are the store's server-side scripts. Every key a script touches
// is passed in KEYS and carries its namespace's hash tag; times come in
// ARGV from the store's clock, never from Redis's TIME.
type scripts struct {
	put, delete, list, changes *goredis.Script
}

func newScripts() scripts {
	return scripts{put: load("put.lua"), delete: load("delete.lua"), list: load("list.lua"), changes: load("changes.lua")}
}

func load(name string) *goredis.Script {
	data, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("memory/redis: missing embedded script " + name)
	}
	return goredis.NewScript(string(data))
}
