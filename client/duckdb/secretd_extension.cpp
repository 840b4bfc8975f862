// secretd_extension.cpp: the entry point of the `secretd` DuckDB extension (LOAD secretd):
// registers the `secretd` SecretStorage, its settings, and, when no extension registered
// them yet, the secret types openai, ollama and azure_llm as FlockMTL defines them.
//
// Settings (each also read from the environment variable secretctl uses, when not SET):
//   secretd_address     SECRETD_ADDR     server URL; default secretd's default socket
//   secretd_token       SECRETD_TOKEN    bearer token; shown as 'redacted' once set
//   secretd_tls_ca      SECRETD_TLS_CA   CA certificate (PEM) for tls+tcp://
//   secretd_timeout_ms  -                per-call timeout, default 5000
// They apply to the whole database instance (every connection), because the lookups
// FlockMTL makes carry no connection: GetSecretByName(GetSystemTransaction(db), name).
//
// Load order with FlockMTL: LOAD flock first, then LOAD secretd (secretd then sees the
// types and uses FlockMTL's). LOAD secretd before flock makes FlockMTL's own registration
// fail in DuckDB ("Attempted to register an already registered secret type"); DuckDB has no
// way to replace a type, so that order is documented as unsupported.
//
// Thread safety: the init function runs once per database, under DuckDB's extension lock;
// the SET callbacks may run on any connection's thread (SecretdState locks).
#include <string>

#include "duckdb.hpp"
#include "duckdb/common/exception.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/main/secret/secret.hpp"
#include "duckdb/main/secret/secret_manager.hpp"
#include "duckdb/storage/object_cache.hpp"

#include "secretd_storage.hpp"

using namespace duckdb;
using secretd_duckdb::SecretdState;

namespace
{

// One of the three types, as FlockMTL's secret_manager.cpp defines it.
struct TypeSpec {
	const char *name;
	const char *default_scope;
	std::vector<std::string> fields;
	std::vector<std::string> required;
};

const std::vector<TypeSpec> &
Types()
{
	static const std::vector<TypeSpec> types = {
	    {"openai", "openai://", {"base_url", "api_key"}, {"api_key"}},
	    {"azure_llm", "azure_llm://", {"api_key", "resource_name", "api_version"},
	        {"api_key", "resource_name", "api_version"}},
	    {"ollama", "ollama://", {"api_url"}, {"api_url"}},
	};
	return types;
}

const TypeSpec *
FindType(const std::string &name)
{
	for (const auto &t : Types()) {
		if (name == t.name) {
			return &t;
		}
	}
	return nullptr;
}

// CREATE SECRET for the types this extension registers (provider `config`): FlockMTL's
// checks and defaults, so a secret reads the same whichever extension created it.
unique_ptr<BaseSecret>
CreateKeyValueSecret(ClientContext &, CreateSecretInput &input)
{
	const TypeSpec *spec = FindType(StringUtil::Lower(input.type));
	if (spec == nullptr) {
		throw InvalidInputException("Unsupported secret type: %s", input.type);
	}
	for (const auto &field : spec->required) {
		auto it = input.options.find(field);
		if (it == input.options.end() || it->second.ToString().empty()) {
			throw InvalidInputException("Missing required field: '%s'", field);
		}
	}
	auto scope = input.scope;
	if (scope.empty()) {
		scope.push_back(spec->default_scope);
	}
	auto secret = make_uniq<KeyValueSecret>(scope, input.type, input.provider, input.name);
	for (const auto &field : spec->fields) {
		auto it = input.options.find(field);
		if (it != input.options.end()) {
			secret->secret_map[field] = it->second;
		}
	}
	secret->redact_keys = secretd_duckdb::RedactKeys(spec->name);
	return std::move(secret);
}

void
RegisterTypesWhenAbsent(ExtensionLoader &loader, SecretManager &manager)
{
	auto known = manager.AllSecretTypes();
	for (const auto &spec : Types()) {
		bool present = false;
		for (const auto &t : known) {
			if (StringUtil::Lower(t.name) == spec.name) {
				present = true;
			}
		}
		if (present) {
			continue;
		}
		SecretType type;
		type.name = spec.name;
		type.deserializer = KeyValueSecret::Deserialize<KeyValueSecret>;
		type.default_provider = "config";
		loader.RegisterSecretType(type);

		CreateSecretFunction fn;
		fn.secret_type = spec.name;
		fn.provider = "config";
		fn.function = CreateKeyValueSecret;
		for (const auto &field : spec.fields) {
			fn.named_parameters[field] = LogicalType::VARCHAR;
		}
		loader.RegisterFunction(fn);
	}
}

shared_ptr<SecretdState>
StateOf(ClientContext &context)
{
	auto state =
	    ObjectCache::GetObjectCache(context).Get<SecretdState>(SecretdState::CACHE_KEY);
	if (!state) {
		throw InvalidInputException(
		    "secretd: the extension's state is missing (LOAD secretd again?)");
	}
	return state;
}

void
SetAddress(ClientContext &context, SetScope, Value &parameter)
{
	StateOf(context)->SetAddress(parameter.IsNull() ? "" : parameter.ToString());
}

// The token is kept by the extension only; DuckDB's copy of the setting (duckdb_settings(),
// current_setting()) becomes 'redacted'.
void
SetToken(ClientContext &context, SetScope, Value &parameter)
{
	std::string token = parameter.IsNull() ? "" : parameter.ToString();
	StateOf(context)->SetToken(token);
	if (!token.empty()) {
		explicit_bzero(&token[0], token.size());
		parameter = Value("redacted");
	}
}

void
SetTlsCa(ClientContext &context, SetScope, Value &parameter)
{
	StateOf(context)->SetTlsCa(parameter.IsNull() ? "" : parameter.ToString());
}

void
SetTimeout(ClientContext &context, SetScope, Value &parameter)
{
	StateOf(context)->SetTimeout(parameter.IsNull() ? 0 : parameter.GetValue<int64_t>());
}

} // namespace

extern "C" {

DUCKDB_CPP_EXTENSION_ENTRY(secretd, loader)
{
	auto &db = loader.GetDatabaseInstance();
	auto &config = DBConfig::GetConfig(db);
	auto state = make_shared_ptr<SecretdState>();
	db.GetObjectCache().Put(SecretdState::CACHE_KEY, state);

	config.AddExtensionOption("secretd_address",
	    "secretd server URL (ipc://, tcp://, tls+tcp://); empty: $SECRETD_ADDR, else secretd's "
	    "default socket",
	    LogicalType::VARCHAR, Value(""), SetAddress);
	config.AddExtensionOption("secretd_token",
	    "bearer token for secretd; empty: $SECRETD_TOKEN, else none (ipc peers with the "
	    "server's uid)",
	    LogicalType::VARCHAR, Value(""), SetToken);
	config.AddExtensionOption("secretd_tls_ca",
	    "CA certificate (PEM) for tls+tcp:// servers; empty: $SECRETD_TLS_CA",
	    LogicalType::VARCHAR, Value(""), SetTlsCa);
	config.AddExtensionOption("secretd_timeout_ms",
	    "timeout of each call to secretd in milliseconds (default 5000)", LogicalType::BIGINT,
	    Value::BIGINT(secretd_duckdb::DEFAULT_TIMEOUT_MS), SetTimeout);

	auto &manager = SecretManager::Get(db);
	RegisterTypesWhenAbsent(loader, manager);
	manager.LoadSecretStorage(make_uniq<secretd_duckdb::SecretdStorage>(state));
	loader.SetDescription("secretd: DuckDB secrets stored in and served by secretd");
}
}
