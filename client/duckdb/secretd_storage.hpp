// secretd_storage.hpp: the `secretd` SecretStorage of the DuckDB extension, and the
// per-database connection state that the extension's settings change.
//
// An adapter and nothing more: each DuckDB call becomes one libsecretd call (two for a
// by-name lookup of __default_azure_llm, see below), and each failed call a DuckDB
// exception carrying secretd's message. Nothing is cached: a secret created or dropped
// anywhere is seen at the next lookup.
//
// Not here: any secret logic of its own (validation, scope matching and conflicts are
// secretd's), any header of server/, store/ or proto/.
//
// Thread safety: DuckDB calls a storage from many threads at once. SecretdState guards its
// settings and its client handle with a mutex; a call takes a shared_ptr to the current
// handle and uses it outside the lock (libsecretd's handle is thread-safe), so a SET that
// replaces the handle waits for nothing and frees the old one after its last call returns.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "duckdb/main/secret/secret_manager.hpp"
#include "duckdb/main/secret/secret_storage.hpp"
#include "duckdb/storage/object_cache.hpp"

#include <secretd.h>

namespace secretd_duckdb
{

// The storage's name in DuckDB: CREATE SECRET ... IN secretd, DROP ... FROM secretd.
constexpr const char *STORAGE_NAME = "secretd";
// Tie-break offset between storages (DuckDB's own: memory 10, local_file 20). A secret in
// memory or local_file wins a which_secret tie against one in secretd.
constexpr int64_t TIE_BREAK_OFFSET = 30;
// Per-call timeout when secretd_timeout_ms is not set: a session never waits longer than
// this for one secretd call (DuckDB may make a few per statement).
constexpr int64_t DEFAULT_TIMEOUT_MS = 5000;

// One open libsecretd handle; closed (and its memory wiped by libsecretd) with the last
// reference.
struct Client {
	secretd_client *handle = nullptr;
	std::string url; // for messages: "secretd at <url>"
	~Client();
};

// The settings secretd_address, secretd_token, secretd_tls_ca and secretd_timeout_ms of one
// database instance, and the client they open. Lives in the database's ObjectCache so that
// the SET callbacks (which get only a ClientContext) and the storage find the same one.
class SecretdState : public duckdb::ObjectCacheEntry
{
      public:
	static constexpr const char *CACHE_KEY = "secretd_extension_state";
	static std::string ObjectType()
	{
		return "secretd_extension_state";
	}
	std::string GetObjectType() override
	{
		return ObjectType();
	}

	// Start from the environment twins SECRETD_ADDR, SECRETD_TOKEN, SECRETD_TLS_CA.
	SecretdState();
	~SecretdState() override;

	// Setters for the SET callbacks; each drops the open client so the next call opens one
	// with the new settings. An empty value means "the default" (environment twin, else
	// secretd's default socket / no token / no CA).
	void SetAddress(const std::string &value);
	void SetToken(const std::string &value);
	void SetTlsCa(const std::string &value);
	void SetTimeout(int64_t ms);

	// The open client, opening it first when needed. Throws a DuckDB exception when the
	// settings are invalid (libsecretd's message).
	std::shared_ptr<Client> GetClient();
	int TimeoutMs();

      private:
	std::mutex lock;
	std::string env_address, env_token, env_tls_ca;
	std::string address, token, tls_ca; // set values; "" = use env_*
	int64_t timeout_ms = DEFAULT_TIMEOUT_MS;
	std::shared_ptr<Client> client;
};

class SecretdStorage : public duckdb::SecretStorage
{
      public:
	explicit SecretdStorage(duckdb::shared_ptr<SecretdState> state);

	duckdb::unique_ptr<duckdb::SecretEntry> StoreSecret(
	    duckdb::unique_ptr<const duckdb::BaseSecret> secret,
	    duckdb::OnCreateConflict on_conflict,
	    duckdb::optional_ptr<duckdb::CatalogTransaction> transaction = nullptr) override;
	duckdb::vector<duckdb::SecretEntry> AllSecrets(
	    duckdb::optional_ptr<duckdb::CatalogTransaction> transaction = nullptr) override;
	void DropSecretByName(const std::string &name, duckdb::OnEntryNotFound on_entry_not_found,
	    duckdb::optional_ptr<duckdb::CatalogTransaction> transaction = nullptr) override;
	duckdb::SecretMatch LookupSecret(const std::string &path, const std::string &type,
	    duckdb::optional_ptr<duckdb::CatalogTransaction> transaction = nullptr) override;
	duckdb::unique_ptr<duckdb::SecretEntry> GetSecretByName(const std::string &name,
	    duckdb::optional_ptr<duckdb::CatalogTransaction> transaction = nullptr) override;

      private:
	duckdb::shared_ptr<SecretdState> state;
};

// The field names DuckDB redacts for type (FlockMTL's choice: openai api_key; ollama api_url;
// azure_llm api_key, resource_name, api_version). Empty for other types.
duckdb::case_insensitive_set_t RedactKeys(const std::string &type);

} // namespace secretd_duckdb
