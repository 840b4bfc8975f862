// flocklike.cpp: a test-only DuckDB extension that stands in for FlockMTL (flock), which
// cannot be downloaded here. It does, for secrets, exactly what FlockMTL's
// src/secret_manager/secret_manager.cpp does:
//   - on LOAD registers the secret types openai, azure_llm, ollama with provider `flock`,
//     KeyValueSecret's deserializer, FlockMTL's fields, required fields and redacted keys
//     (loader.RegisterSecretType / loader.RegisterFunction);
//   - reads a secret with SecretManager::GetSecretByName(
//     CatalogTransaction::GetSystemTransaction(db), name), casts it to KeyValueSecret and
//     takes FlockMTL's fields of its type with TryGetValue.
// Exposed to the tests as table functions:
//   flocklike_get_secret(name)   -> (name, type, key, value) rows, FlockMTL's lookup
//   flocklike_bench(name, n)     -> (calls, ns_per_call): n such lookups, timed
// Not installed; built only with the secretd extension.
#include <chrono>
#include <string>
#include <vector>

#include "duckdb.hpp"
#include "duckdb/catalog/catalog_transaction.hpp"
#include "duckdb/common/exception.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/main/secret/secret.hpp"
#include "duckdb/main/secret/secret_manager.hpp"

using namespace duckdb;

namespace
{

struct Details {
	std::string type, scope;
	std::vector<std::string> fields;
	std::vector<std::string> redact;
	std::vector<std::string> required;
};

const std::vector<Details> &
AllDetails()
{
	// FlockMTL's get_*_secret_details() (anthropic left out: secretd has no such type).
	static const std::vector<Details> d = {
	    {"openai", "openai://", {"base_url", "api_key"}, {"api_key"}, {"api_key"}},
	    {"azure_llm", "azure_llm://", {"api_key", "resource_name", "api_version"}, {"api_key"},
	        {"api_key", "resource_name", "api_version"}},
	    {"ollama", "ollama://", {"api_url"}, {"api_url"}, {"api_url"}},
	};
	return d;
}

const Details &
DetailsOf(const std::string &type)
{
	for (const auto &d : AllDetails()) {
		if (d.type == type) {
			return d;
		}
	}
	throw InvalidInputException("Unsupported secret provider: %s", type);
}

unique_ptr<BaseSecret>
CreateSecret(ClientContext &, CreateSecretInput &input)
{
	const Details &d = DetailsOf(input.type);
	for (const auto &f : d.required) {
		auto it = input.options.find(f);
		if (it == input.options.end() || it->second.ToString().empty()) {
			throw InvalidInputException("Missing required field: '%s'", f);
		}
	}
	auto scope = input.scope;
	if (scope.empty()) {
		scope.push_back(d.scope);
	}
	auto secret = make_uniq<KeyValueSecret>(scope, input.type, input.provider, input.name);
	secret->redact_keys = case_insensitive_set_t(d.redact.begin(), d.redact.end());
	for (const auto &f : d.fields) {
		auto it = input.options.find(f);
		if (it != input.options.end()) {
			secret->secret_map[f] = it->second;
		}
	}
	return std::move(secret);
}

// FlockMTL's SecretManager::GetSecret, returning the (key, value) pairs.
std::vector<std::pair<std::string, std::string>>
FlockGetSecret(DatabaseInstance &db, const std::string &name, std::string &type)
{
	auto &manager = db.GetSecretManager();
	auto transaction = CatalogTransaction::GetSystemTransaction(db);
	auto secret = manager.GetSecretByName(transaction, name);
	if (secret == nullptr) {
		throw InvalidInputException("Secret not found : %s", name);
	}
	const auto &kv = dynamic_cast<const KeyValueSecret &>(*secret->secret);
	type = secret->secret->GetType();
	std::vector<std::pair<std::string, std::string>> out;
	for (const auto &f : DetailsOf(type).fields) {
		auto value = kv.TryGetValue(f);
		if (!value.IsNull()) {
			out.emplace_back(f, value.ToString());
		}
	}
	return out;
}

struct RowsData : public TableFunctionData {
	std::vector<std::vector<Value>> rows;
};

struct Offset : public GlobalTableFunctionState {
	idx_t next = 0;
};

unique_ptr<GlobalTableFunctionState>
InitOffset(ClientContext &, TableFunctionInitInput &)
{
	return make_uniq<Offset>();
}

void
EmitRows(ClientContext &, TableFunctionInput &input, DataChunk &output)
{
	auto &data = input.bind_data->Cast<RowsData>();
	auto &off = input.global_state->Cast<Offset>();
	idx_t n = 0;
	while (off.next < data.rows.size() && n < STANDARD_VECTOR_SIZE) {
		for (idx_t c = 0; c < data.rows[off.next].size(); c++) {
			output.SetValue(c, n, data.rows[off.next][c]);
		}
		off.next++;
		n++;
	}
	output.SetCardinality(n);
}

unique_ptr<FunctionData>
BindGetSecret(ClientContext &context, TableFunctionBindInput &input, vector<LogicalType> &types,
    vector<string> &names)
{
	auto name = input.inputs[0].ToString();
	names = {"name", "type", "key", "value"};
	types = {
	    LogicalType::VARCHAR, LogicalType::VARCHAR, LogicalType::VARCHAR, LogicalType::VARCHAR};
	auto result = make_uniq<RowsData>();
	std::string type;
	for (auto &kv : FlockGetSecret(*context.db, name, type)) {
		result->rows.push_back(
		    {Value(name), Value(type), Value(kv.first), Value(kv.second)});
	}
	return std::move(result);
}

unique_ptr<FunctionData>
BindBench(ClientContext &context, TableFunctionBindInput &input, vector<LogicalType> &types,
    vector<string> &names)
{
	auto name = input.inputs[0].ToString();
	auto n = input.inputs[1].GetValue<int64_t>();
	names = {"calls", "ns_per_call"};
	types = {LogicalType::BIGINT, LogicalType::DOUBLE};
	std::string type;
	size_t sink = 0;
	auto start = std::chrono::steady_clock::now();
	for (int64_t i = 0; i < n; i++) {
		sink += FlockGetSecret(*context.db, name, type).size();
	}
	auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
	              .count();
	if (sink == 0 && n > 0) {
		throw InvalidInputException("flocklike_bench: secret has no fields");
	}
	auto result = make_uniq<RowsData>();
	result->rows.push_back(
	    {Value::BIGINT(n), Value::DOUBLE(n > 0 ? ns / static_cast<double>(n) : 0)});
	return std::move(result);
}

} // namespace

extern "C" {

DUCKDB_CPP_EXTENSION_ENTRY(flocklike, loader)
{
	for (const auto &d : AllDetails()) {
		SecretType type;
		type.name = d.type;
		type.deserializer = KeyValueSecret::Deserialize<KeyValueSecret>;
		type.default_provider = "flock";
		loader.RegisterSecretType(type);
	}
	for (const auto &d : AllDetails()) {
		CreateSecretFunction fn = {d.type, "flock", CreateSecret, {}};
		for (const auto &f : d.fields) {
			fn.named_parameters[f] = LogicalType::VARCHAR;
		}
		loader.RegisterFunction(fn);
	}
	TableFunction get(
	    "flocklike_get_secret", {LogicalType::VARCHAR}, EmitRows, BindGetSecret, InitOffset);
	loader.RegisterFunction(get);
	TableFunction bench("flocklike_bench", {LogicalType::VARCHAR, LogicalType::BIGINT},
	    EmitRows, BindBench, InitOffset);
	loader.RegisterFunction(bench);
}
}
