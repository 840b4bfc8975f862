// secretd_storage.cpp: the `secretd` SecretStorage: DuckDB's storage calls as libsecretd
// calls, secretd's statuses as DuckDB exceptions. See secretd_storage.hpp for the contract.
//
// Mapping (a secretd secret as DuckDB sees it):
//   name, type, scope          as stored in secretd
//   provider                   "config" (secretd's only provider)
//   persistent / storage       secretd's sqlcipher -> PERSISTENT, memory -> TEMPORARY;
//                              storage "secretd" for both
//   fields                     a KeyValueSecret's map, VARCHAR values; redacted keys as
//                              FlockMTL redacts them
// StoreSecret writes persistent secrets only (the storage is persistent, so DuckDB refuses
// CREATE TEMPORARY ... IN secretd itself). By-name calls use either secretd storage; a name
// held by both is secretd's AMBIGUOUS error, as DuckDB reports a name in two storages.
//
// __default_azure: secretd names an unnamed azure_llm secret __default_azure, DuckDB (and so
// FlockMTL's default lookup) __default_azure_llm. A by-name get or drop of
// __default_azure_llm that secretd does not hold falls back to __default_azure when that one
// is an azure_llm secret, and storing __default_azure_llm stores __default_azure: so the
// seed's secret is the one FlockMTL finds, and a DuckDB session's unnamed Azure secret is
// the one secretctl's default name shows. Listings show secretd's names.
#include "secretd_storage.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "duckdb/common/exception.hpp"
#include "duckdb/main/secret/secret.hpp"

namespace secretd_duckdb
{

using duckdb::BaseSecret;
using duckdb::KeyValueSecret;
using duckdb::SecretEntry;
using duckdb::SecretMatch;
using duckdb::SecretPersistType;
using duckdb::unique_ptr;

namespace
{

constexpr const char *AZURE_DUCKDB_DEFAULT = "__default_azure_llm";
constexpr const char *AZURE_SECRETD_DEFAULT = "__default_azure";

struct SecretFree {
	void operator()(secretd_secret *s) const
	{
		secretd_secret_free(s);
	}
};
struct RowsFree {
	void operator()(secretd_rows *r) const
	{
		secretd_rows_free(r);
	}
};
using SecretPtr = std::unique_ptr<secretd_secret, SecretFree>;
using RowsPtr = std::unique_ptr<secretd_rows, RowsFree>;

std::string
EnvOr(const char *name)
{
	const char *v = std::getenv(name);
	return v ? std::string(v) : std::string();
}

// Throw the DuckDB exception for a failed call. what: the operation ("get secret 'x'").
// secretd's message never holds a value (SPEC §6), so it is passed on whole.
[[noreturn]] void
Throw(const Client &client, const std::string &what, const secretd_error &err)
{
	std::string msg = "secretd at " + client.url + ": " + what + ": " +
	                  secretd_status_str(err.status) + ": " + err.message;
	switch (err.status) {
	case SECRETD_UNAUTHENTICATED:
	case SECRETD_PERMISSION_DENIED:
		throw duckdb::PermissionException(msg);
	case SECRETD_UNAVAILABLE:
	case SECRETD_DEADLINE_EXCEEDED:
	case SECRETD_CANCELLED:
		throw duckdb::IOException(msg);
	case SECRETD_INTERNAL:
	case SECRETD_UNKNOWN:
	case SECRETD_DATA_LOSS:
		// Not duckdb::InternalException: that one means a bug in DuckDB.
		throw duckdb::IOException(msg);
	default:
		throw duckdb::InvalidInputException(msg);
	}
}

// A DuckDB secret entry for one secretd secret (values copied: DuckDB owns them now).
unique_ptr<SecretEntry>
ToEntry(const secretd_secret &s)
{
	duckdb::vector<std::string> scope;
	for (size_t i = 0; i < s.n_scope; i++) {
		scope.emplace_back(s.scope[i]);
	}
	auto kv = duckdb::make_uniq<KeyValueSecret>(scope, s.type, s.provider, s.name);
	for (size_t i = 0; i < s.n_fields; i++) {
		kv->secret_map[s.fields[i].key] =
		    duckdb::Value(std::string(s.fields[i].value, s.fields[i].value_len));
	}
	kv->redact_keys = RedactKeys(s.type);
	auto entry = duckdb::make_uniq<SecretEntry>(std::move(kv));
	entry->persist_type = s.storage == SECRETD_STORAGE_SQLCIPHER ? SecretPersistType::PERSISTENT
	                                                             : SecretPersistType::TEMPORARY;
	entry->storage_mode = STORAGE_NAME;
	return entry;
}

// get name from either secretd storage; nullptr when secretd holds no such secret.
SecretPtr
Get(SecretdState &state, const std::string &name)
{
	auto client = state.GetClient();
	secretd_secret *s = nullptr;
	secretd_error err;
	secretd_status st = secretd_get(
	    client->handle, name.c_str(), SECRETD_STORAGE_ANY, state.TimeoutMs(), &s, &err);
	if (st == SECRETD_NOT_FOUND) {
		return nullptr;
	}
	if (st != SECRETD_OK) {
		Throw(*client, "get secret '" + name + "'", err);
	}
	return SecretPtr(s);
}

// The name FlockMTL's __default_azure_llm stands for on secretd, when secretd holds no
// secret under that exact name.
bool
IsAzureAlias(const std::string &name)
{
	return duckdb::StringUtil::Lower(name) == AZURE_DUCKDB_DEFAULT;
}

} // namespace

duckdb::case_insensitive_set_t
RedactKeys(const std::string &type)
{
	if (type == "openai") {
		return {"api_key"};
	}
	if (type == "ollama") {
		return {"api_url"};
	}
	if (type == "azure_llm") {
		return {"api_key", "resource_name", "api_version"};
	}
	return {};
}

Client::~Client()
{
	secretd_client_close(handle);
}

SecretdState::SecretdState()
    : env_address(EnvOr("SECRETD_ADDR")), env_token(EnvOr("SECRETD_TOKEN")),
      env_tls_ca(EnvOr("SECRETD_TLS_CA"))
{
}

SecretdState::~SecretdState()
{
	// The token is a credential: do not leave it in freed memory.
	if (!token.empty()) {
		explicit_bzero(&token[0], token.size());
	}
	if (!env_token.empty()) {
		explicit_bzero(&env_token[0], env_token.size());
	}
}

void
SecretdState::SetAddress(const std::string &value)
{
	std::lock_guard<std::mutex> guard(lock);
	address = value;
	client.reset();
}

void
SecretdState::SetToken(const std::string &value)
{
	std::lock_guard<std::mutex> guard(lock);
	if (!token.empty()) {
		explicit_bzero(&token[0], token.size());
	}
	token = value;
	client.reset();
}

void
SecretdState::SetTlsCa(const std::string &value)
{
	std::lock_guard<std::mutex> guard(lock);
	tls_ca = value;
	client.reset();
}

void
SecretdState::SetTimeout(int64_t ms)
{
	std::lock_guard<std::mutex> guard(lock);
	timeout_ms = ms > 0 ? ms : DEFAULT_TIMEOUT_MS;
}

int
SecretdState::TimeoutMs()
{
	std::lock_guard<std::mutex> guard(lock);
	return timeout_ms > INT32_MAX ? INT32_MAX : static_cast<int>(timeout_ms);
}

std::shared_ptr<Client>
SecretdState::GetClient()
{
	std::lock_guard<std::mutex> guard(lock);
	if (client) {
		return client;
	}
	const std::string &addr = address.empty() ? env_address : address;
	const std::string &tok = token.empty() ? env_token : token;
	const std::string &ca = tls_ca.empty() ? env_tls_ca : tls_ca;
	secretd_options opts{};
	opts.token = tok.empty() ? nullptr : tok.c_str();
	opts.tls_ca_file = ca.empty() ? nullptr : ca.c_str();

	auto c = std::make_shared<Client>();
	if (addr.empty()) {
		char buf[512];
		if (secretd_default_url(buf, sizeof(buf)) == SECRETD_OK) {
			c->url = buf;
		}
	} else {
		c->url = addr;
	}
	secretd_error err;
	secretd_status st =
	    secretd_client_open(addr.empty() ? nullptr : addr.c_str(), &opts, &c->handle, &err);
	if (st != SECRETD_OK) {
		throw duckdb::InvalidInputException("secretd at %s: cannot open a client: %s: %s",
		    c->url, secretd_status_str(st), err.message);
	}
	client = c;
	return client;
}

SecretdStorage::SecretdStorage(duckdb::shared_ptr<SecretdState> state_p)
    : SecretStorage(STORAGE_NAME, TIE_BREAK_OFFSET), state(std::move(state_p))
{
	persistent = true;
}

unique_ptr<SecretEntry>
SecretdStorage::StoreSecret(unique_ptr<const BaseSecret> secret,
    duckdb::OnCreateConflict on_conflict, duckdb::optional_ptr<duckdb::CatalogTransaction>)
{
	auto kv = dynamic_cast<const KeyValueSecret *>(secret.get());
	if (kv == nullptr) {
		throw duckdb::InvalidInputException(
		    "secretd stores key-value secrets only; type '%s' is not one",
		    secret->GetType());
	}
	std::string name = secret->GetName();
	if (IsAzureAlias(name) && secret->GetType() == "azure_llm") {
		name = AZURE_SECRETD_DEFAULT;
	}
	// Borrowed views of DuckDB's strings for the duration of the call.
	std::vector<std::string> values;
	std::vector<std::string> keys;
	values.reserve(kv->secret_map.size());
	keys.reserve(kv->secret_map.size());
	for (const auto &it : kv->secret_map) {
		if (it.second.IsNull()) {
			continue;
		}
		keys.push_back(it.first);
		values.push_back(it.second.ToString());
	}
	std::vector<secretd_field> fields(keys.size());
	for (size_t i = 0; i < keys.size(); i++) {
		fields[i].key = keys[i].c_str();
		fields[i].value = values[i].c_str();
		fields[i].value_len = values[i].size();
	}
	const auto &scope_v = secret->GetScope();
	std::vector<const char *> scope;
	for (const auto &s : scope_v) {
		scope.push_back(s.c_str());
	}

	secretd_create_args args{};
	args.name = name.c_str();
	std::string type = secret->GetType();
	args.type = type.c_str();
	args.fields = fields.data();
	args.n_fields = fields.size();
	args.scope = scope.empty() ? nullptr : scope.data();
	args.n_scope = scope.size();
	args.persistent = true;
	switch (on_conflict) {
	case duckdb::OnCreateConflict::REPLACE_ON_CONFLICT:
		args.on_conflict = SECRETD_CONFLICT_REPLACE;
		break;
	case duckdb::OnCreateConflict::IGNORE_ON_CONFLICT:
		args.on_conflict = SECRETD_CONFLICT_IGNORE;
		break;
	default:
		args.on_conflict = SECRETD_CONFLICT_ERROR;
		break;
	}

	auto client = state->GetClient();
	secretd_create_result res;
	secretd_error err;
	secretd_status st = secretd_create(client->handle, &args, state->TimeoutMs(), &res, &err);
	for (auto &v : values) {
		if (!v.empty()) {
			explicit_bzero(&v[0], v.size());
		}
	}
	if (st != SECRETD_OK) {
		Throw(*client, "create secret '" + name + "'", err);
	}
	if (!res.created) {
		return nullptr; // IF NOT EXISTS found one: DuckDB's own storages answer so
	}
	auto entry = duckdb::make_uniq<SecretEntry>(std::move(secret));
	entry->persist_type = SecretPersistType::PERSISTENT;
	entry->storage_mode = STORAGE_NAME;
	return entry;
}

duckdb::vector<SecretEntry>
SecretdStorage::AllSecrets(duckdb::optional_ptr<duckdb::CatalogTransaction>)
{
	// List gives names and scopes but only redacted values; DuckDB's entries carry values
	// (duckdb_secrets(redact=false) shows them, as for its own storages), so each secret
	// is read with Get. A secret dropped between the two calls is left out.
	auto client = state->GetClient();
	int timeout = state->TimeoutMs();
	secretd_rows *rows_raw = nullptr;
	secretd_error err;
	if (secretd_list(client->handle, nullptr, timeout, &rows_raw, &err) != SECRETD_OK) {
		Throw(*client, "list secrets", err);
	}
	RowsPtr rows(rows_raw);
	duckdb::vector<SecretEntry> result;
	for (size_t i = 0; i < rows->n_rows; i++) {
		const secretd_row &row = rows->rows[i];
		secretd_storage storage =
		    row.persistent ? SECRETD_STORAGE_SQLCIPHER : SECRETD_STORAGE_MEMORY;
		secretd_secret *s = nullptr;
		secretd_status st =
		    secretd_get(client->handle, row.name, storage, timeout, &s, &err);
		if (st == SECRETD_NOT_FOUND) {
			continue;
		}
		if (st != SECRETD_OK) {
			Throw(*client, std::string("get secret '") + row.name + "'", err);
		}
		SecretPtr owned(s);
		result.push_back(*ToEntry(*owned));
	}
	return result;
}

void
SecretdStorage::DropSecretByName(const std::string &name,
    duckdb::OnEntryNotFound on_entry_not_found, duckdb::optional_ptr<duckdb::CatalogTransaction>)
{
	auto client = state->GetClient();
	int timeout = state->TimeoutMs();
	secretd_drop_result res;
	secretd_error err;
	secretd_status st = secretd_drop(
	    client->handle, name.c_str(), SECRETD_STORAGE_ANY, false, timeout, &res, &err);
	if (st == SECRETD_NOT_FOUND && IsAzureAlias(name)) {
		auto alias = Get(*state, AZURE_SECRETD_DEFAULT);
		if (alias && std::strcmp(alias->type, "azure_llm") == 0) {
			st = secretd_drop(client->handle, AZURE_SECRETD_DEFAULT, alias->storage,
			    false, timeout, &res, &err);
		}
	}
	if (st == SECRETD_NOT_FOUND && on_entry_not_found == duckdb::OnEntryNotFound::RETURN_NULL) {
		return;
	}
	if (st != SECRETD_OK) {
		Throw(*client, "drop secret '" + name + "'", err);
	}
}

SecretMatch
SecretdStorage::LookupSecret(const std::string &path, const std::string &type,
    duckdb::optional_ptr<duckdb::CatalogTransaction>)
{
	auto client = state->GetClient();
	secretd_secret *s = nullptr;
	secretd_error err;
	secretd_status st = secretd_resolve(
	    client->handle, path.c_str(), type.c_str(), state->TimeoutMs(), &s, &err);
	SecretMatch best;
	// DuckDB asks every storage for every type it looks up (http, s3, ... when a file is
	// read): a type secretd does not know is simply not here, not an error.
	if (st == SECRETD_INVALID_ARGUMENT && std::strcmp(err.reason, "UNKNOWN_TYPE") == 0) {
		return best;
	}
	if (st != SECRETD_OK) {
		Throw(*client, "resolve '" + path + "' for type '" + type + "'", err);
	}
	if (s == nullptr) {
		return best;
	}
	SecretPtr owned(s);
	auto entry = ToEntry(*owned);
	// DuckDB's scoring (100 x matched prefix length - this storage's offset), so that
	// secretd's pick competes with the other storages' as theirs compete with each other.
	return SelectBestMatch(*entry, path, tie_break_offset, best);
}

unique_ptr<SecretEntry>
SecretdStorage::GetSecretByName(
    const std::string &name, duckdb::optional_ptr<duckdb::CatalogTransaction>)
{
	auto s = Get(*state, name);
	if (!s && IsAzureAlias(name)) {
		s = Get(*state, AZURE_SECRETD_DEFAULT);
		if (s && std::strcmp(s->type, "azure_llm") != 0) {
			s.reset();
		}
	}
	if (!s) {
		return nullptr;
	}
	return ToEntry(*s);
}

} // namespace secretd_duckdb
