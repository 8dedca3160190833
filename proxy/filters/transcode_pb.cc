// The protobuf side of REST transcoding (transcode_pb.h): descriptor pools,
// google.api.http rules and libprotobuf's proto3 JSON mapping behind C.
// Invariant: a tc_pool is built completely (every file, so every descriptor)
// before it is returned, and only read afterwards: workers convert with it
// concurrently without locks.
// SPDX-License-Identifier: MIT
#include "proxy/filters/transcode_pb.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <event2/buffer.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <google/protobuf/wire_format_lite.h>
#include <jansson.h>

namespace pb = google::protobuf;

namespace
{

const char kUrlPrefix[] = "type.googleapis.com";
// google/api/annotations.proto: extend google.protobuf.MethodOptions { HttpRule http = 72295728; }
const int kHttpExtension = 72295728;

// Reasons go into grpc-message and JSON: control bytes (a NUL from the
// client's JSON, say) become spaces so none cuts the text short.
void set_err(char *err, size_t errlen, const std::string &s)
{
    size_t n = 0;

    if (err == nullptr || errlen == 0)
        return;
    for (size_t i = 0; i < s.size() && n + 1 < errlen; i++)
        err[n++] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
    if (n == 0 && errlen > 16)
        n = (size_t)std::snprintf(err, errlen, "invalid request");
    err[n] = '\0';
}

class Collector : public pb::DescriptorPool::ErrorCollector
{
  public:
    std::string first;
    void AddError(const std::string &filename, const std::string &element, const pb::Message *,
                  ErrorLocation, const std::string &message) override
    {
        if (first.empty())
            first = filename + ": " + (element.empty() ? "" : element + ": ") + message;
    }
};

// One parsed google.api.HttpRule (only what transcoding reads).
struct HttpRule {
    std::string verb, pattern, body, response_body;
    std::vector<HttpRule> additional;
};

bool parse_pattern(const pb::UnknownFieldSet &set, std::string *kind, std::string *path)
{
    for (int i = 0; i < set.field_count(); i++) {
        const pb::UnknownField &f = set.field(i);

        if (f.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED)
            continue;
        if (f.number() == 1)
            *kind = f.length_delimited();
        else if (f.number() == 2)
            *path = f.length_delimited();
    }
    return !kind->empty() && !path->empty();
}

// HttpRule fields: get 2, put 3, post 4, delete 5, patch 6, body 7,
// custom 8 (CustomHttpPattern: kind 1, path 2), additional_bindings 11,
// response_body 12 (google/api/http.proto).
bool parse_rule(const std::string &bytes, HttpRule *r, int depth)
{
    static const char *const verbs[] = {nullptr, nullptr, "GET", "PUT", "POST", "DELETE", "PATCH"};
    pb::UnknownFieldSet set;

    if (!set.ParseFromString(bytes))
        return false;
    for (int i = 0; i < set.field_count(); i++) {
        const pb::UnknownField &f = set.field(i);
        int num = f.number();

        if (f.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED)
            continue;
        if (num >= 2 && num <= 6) {
            r->verb = verbs[num];
            r->pattern = f.length_delimited();
        } else if (num == 8) {
            pb::UnknownFieldSet c;

            if (c.ParseFromString(f.length_delimited()))
                parse_pattern(c, &r->verb, &r->pattern);
        } else if (num == 7) {
            r->body = f.length_delimited();
        } else if (num == 12) {
            r->response_body = f.length_delimited();
        } else if (num == 11 && depth == 0) {
            HttpRule a;

            // additional_bindings nest only one level (http.proto).
            if (parse_rule(f.length_delimited(), &a, depth + 1) && !a.pattern.empty())
                r->additional.push_back(a);
        }
    }
    return true;
}

} // namespace

struct tc_method {
    const pb::MethodDescriptor *md;
    std::string grpc_path;
    std::string in_url, out_url;
    const struct tc_pool *pool;
    HttpRule rule;
    bool has_rule;
};

struct tc_pool {
    pb::SimpleDescriptorDatabase db;
    std::unique_ptr<pb::DescriptorPool> pool;
    std::unique_ptr<pb::util::TypeResolver> resolver;
    std::unique_ptr<pb::DynamicMessageFactory> factory; // thread-safe once built
    std::vector<std::string> file_names;                // in the order given
    std::vector<const pb::ServiceDescriptor *> services;
    std::vector<std::unique_ptr<tc_method>> methods;
};

namespace
{

tc_pool *build(std::vector<pb::FileDescriptorProto> &files, char *err, size_t errlen)
{
    std::unique_ptr<tc_pool> p(new tc_pool);
    Collector coll;
    std::map<std::string, HttpRule> rules; // by method full name

    for (auto &f : files) {
        // The rules are read from the protos themselves: google.api.http is an
        // extension this binary has no generated code for, so it stays in
        // MethodOptions' unknown fields, exactly as the server compiled it.
        for (const auto &svc : f.service()) {
            for (const auto &m : svc.method()) {
                const pb::UnknownFieldSet &u = m.options().unknown_fields();

                for (int i = 0; i < u.field_count(); i++) {
                    HttpRule r;

                    if (u.field(i).number() != kHttpExtension ||
                        u.field(i).type() != pb::UnknownField::TYPE_LENGTH_DELIMITED)
                        continue;
                    if (parse_rule(u.field(i).length_delimited(), &r, 0) && !r.pattern.empty()) {
                        std::string full = (f.package().empty() ? "" : f.package() + ".") +
                                           svc.name() + "." + m.name();
                        rules[full] = r;
                    }
                }
            }
        }
        if (!p->db.Add(f)) {
            set_err(err, errlen, "file " + f.name() + " given twice or unusable");
            return nullptr;
        }
        p->file_names.push_back(f.name());
    }
    p->pool.reset(new pb::DescriptorPool(&p->db, &coll));
    for (const auto &name : p->file_names) {
        const pb::FileDescriptor *fd = p->pool->FindFileByName(name);

        if (fd == nullptr) {
            set_err(err, errlen,
                    coll.first.empty() ? "cannot build " + name : "cannot build " + coll.first);
            return nullptr;
        }
        for (int s = 0; s < fd->service_count(); s++) {
            const pb::ServiceDescriptor *sd = fd->service(s);

            p->services.push_back(sd);
            for (int m = 0; m < sd->method_count(); m++) {
                std::unique_ptr<tc_method> tm(new tc_method);
                auto it = rules.find(sd->method(m)->full_name());

                tm->md = sd->method(m);
                tm->grpc_path = "/" + sd->full_name() + "/" + tm->md->name();
                tm->in_url = std::string(kUrlPrefix) + "/" + tm->md->input_type()->full_name();
                tm->out_url = std::string(kUrlPrefix) + "/" + tm->md->output_type()->full_name();
                tm->pool = p.get();
                tm->has_rule = it != rules.end();
                if (tm->has_rule)
                    tm->rule = it->second;
                p->methods.push_back(std::move(tm));
            }
        }
    }
    p->resolver.reset(pb::util::NewTypeResolverForDescriptorPool(kUrlPrefix, p->pool.get()));
    p->factory.reset(new pb::DynamicMessageFactory(p->pool.get()));
    return p.release();
}

void append_json_string(std::string *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    out->push_back('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            out->push_back('\\');
            out->push_back((char)c);
        } else if (c < 0x20) {
            out->append("\\u00");
            out->push_back(hex[c >> 4]);
            out->push_back(hex[c & 15]);
        } else {
            out->push_back((char)c);
        }
    }
    out->push_back('"');
}

// A field by its proto name or its JSON name (query parameters use either).
const pb::FieldDescriptor *find_field(const pb::Descriptor *d, const std::string &name)
{
    const pb::FieldDescriptor *f = d->FindFieldByName(name);

    if (f == nullptr)
        f = d->FindFieldByCamelcaseName(name);
    if (f == nullptr) {
        for (int i = 0; i < d->field_count() && f == nullptr; i++) {
            if (d->field(i)->json_name() == name)
                f = d->field(i);
        }
    }
    return f;
}

bool is_string_wkt(const pb::Descriptor *d)
{
    static const char *const names[] = {
        "google.protobuf.Timestamp",   "google.protobuf.Duration",   "google.protobuf.FieldMask",
        "google.protobuf.StringValue", "google.protobuf.BytesValue", "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
        "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.BoolValue",
    };

    for (const char *n : names) {
        if (d->full_name() == n)
            return true;
    }
    return false;
}

// Walks |path| (a.b.c) from |d|: the leaf field, or nullptr with |why|.
const pb::FieldDescriptor *walk(const pb::Descriptor *d, const std::string &path,
                                std::vector<const pb::FieldDescriptor *> *chain, std::string *why)
{
    size_t start = 0;

    for (;;) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
        const pb::FieldDescriptor *f = find_field(d, part);

        if (f == nullptr) {
            *why = "no field '" + part + "' in " + d->full_name();
            return nullptr;
        }
        if (chain != nullptr)
            chain->push_back(f);
        if (dot == std::string::npos) {
            if (f->is_map() || (f->type() == pb::FieldDescriptor::TYPE_MESSAGE &&
                                !is_string_wkt(f->message_type()))) {
                *why = "field '" + path + "' is a message: it cannot take a single value";
                return nullptr;
            }
            return f;
        }
        if (f->type() != pb::FieldDescriptor::TYPE_MESSAGE || f->is_repeated()) {
            *why = "field '" + part + "' of '" + path + "' is not a singular message";
            return nullptr;
        }
        d = f->message_type();
        start = dot + 1;
    }
}

// A parameter's value as the JSON token its field takes.
bool value_token(const pb::FieldDescriptor *f, const std::string &v, std::string *tok,
                 std::string *why)
{
    switch (f->type()) {
    case pb::FieldDescriptor::TYPE_BOOL:
        if (v == "true" || v == "false") {
            *tok = v;
            return true;
        }
        *why = "field '" + f->name() + "': expected true or false, got '" + v + "'";
        return false;
    case pb::FieldDescriptor::TYPE_ENUM: {
        bool num = !v.empty();

        for (size_t i = 0; i < v.size(); i++)
            num = num && ((v[i] >= '0' && v[i] <= '9') || (i == 0 && v[i] == '-' && v.size() > 1));
        if (num) {
            *tok = v;
            return true;
        }
        break;
    }
    case pb::FieldDescriptor::TYPE_MESSAGE:
        if (f->message_type()->full_name() == "google.protobuf.BoolValue" &&
            (v == "true" || v == "false")) {
            *tok = v;
            return true;
        }
        break;
    default:
        break;
    }
    tok->clear();
    append_json_string(tok, v.data(), v.size());
    return true;
}

// The JSON object that the parameters make: nested objects by field path.
struct Node {
    std::map<std::string, Node> kids; // by proto field name
    std::vector<std::string> values;  // JSON tokens (leaf)
    bool repeated = false;
    bool leaf = false;
};

void render(const Node &n, std::string *out)
{
    if (n.leaf) {
        if (n.repeated) {
            out->push_back('[');
            for (size_t i = 0; i < n.values.size(); i++) {
                if (i > 0)
                    out->push_back(',');
                out->append(n.values[i]);
            }
            out->push_back(']');
        } else {
            out->append(n.values.back());
        }
        return;
    }
    out->push_back('{');
    bool first = true;
    for (const auto &kv : n.kids) {
        if (!first)
            out->push_back(',');
        first = false;
        append_json_string(out, kv.first.data(), kv.first.size());
        out->push_back(':');
        render(kv.second, out);
    }
    out->push_back('}');
}

void frame_append(struct evbuffer *out, const std::string &msg)
{
    uint8_t hdr[5];
    uint32_t n = (uint32_t)msg.size();

    hdr[0] = 0;
    hdr[1] = (uint8_t)(n >> 24);
    hdr[2] = (uint8_t)(n >> 16);
    hdr[3] = (uint8_t)(n >> 8);
    hdr[4] = (uint8_t)n;
    evbuffer_add(out, hdr, sizeof(hdr));
    evbuffer_add(out, msg.data(), msg.size());
}

std::string status_text(const pb::util::Status &st)
{
    return std::string(st.message().data(), st.message().size());
}

} // namespace

extern "C" {

// Linked into a test or a fuzz harness, or loaded as switchyard-rest.so by
// transcode_mod.c (which never calls this one): nothing to load.
int tc_module_load(char *, size_t)
{
    return 0;
}

struct tc_pool *tc_pool_from_set(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    pb::FileDescriptorSet set;
    std::vector<pb::FileDescriptorProto> files;

    if (n > INT32_MAX || !set.ParseFromArray(p, (int)n)) {
        set_err(err, errlen,
                "not a FileDescriptorSet (expected the output of protoc "
                "--include_imports -o FILE)");
        return nullptr;
    }
    if (set.file_size() == 0) {
        set_err(err, errlen, "the descriptor set holds no file");
        return nullptr;
    }
    files.assign(set.file().begin(), set.file().end());
    return build(files, err, errlen);
}

struct tc_pool *tc_pool_from_files(const struct tc_bytes *in, size_t n, char *err, size_t errlen)
{
    std::vector<pb::FileDescriptorProto> files;
    std::map<std::string, bool> seen;

    for (size_t i = 0; i < n; i++) {
        pb::FileDescriptorProto f;

        if (in[i].n > INT32_MAX || !f.ParseFromArray(in[i].p, (int)in[i].n)) {
            set_err(err, errlen, "a file descriptor does not parse");
            return nullptr;
        }
        if (seen[f.name()])
            continue; // reflection may send a file more than once
        seen[f.name()] = true;
        files.push_back(f);
    }
    return build(files, err, errlen);
}

void tc_pool_free(struct tc_pool *p)
{
    delete p;
}

size_t tc_pool_nservices(const struct tc_pool *p)
{
    return p->services.size();
}

const char *tc_pool_service(const struct tc_pool *p, size_t i)
{
    return p->services[i]->full_name().c_str();
}

void tc_pool_rules(const struct tc_pool *p, void (*cb)(const struct tc_rule *r, void *arg),
                   void (*bad)(const char *why, void *arg), void *arg)
{
    for (const auto &m : p->methods) {
        std::vector<const HttpRule *> all;

        if (!m->has_rule)
            continue;
        all.push_back(&m->rule);
        for (const auto &a : m->rule.additional)
            all.push_back(&a);
        for (const HttpRule *r : all) {
            struct tc_rule out;
            std::string why;

            if (!r->body.empty() && r->body != "*" &&
                m->md->input_type()->FindFieldByName(r->body) == nullptr)
                why =
                    "body '" + r->body + "' is not a field of " + m->md->input_type()->full_name();
            else if (!r->response_body.empty() &&
                     m->md->output_type()->FindFieldByName(r->response_body) == nullptr)
                why = "response_body '" + r->response_body + "' is not a field of " +
                      m->md->output_type()->full_name();
            if (!why.empty()) {
                if (bad != nullptr)
                    bad((m->md->full_name() + ": " + r->verb + " " + r->pattern + ": " + why)
                            .c_str(),
                        arg);
                continue;
            }
            out.method = m.get();
            out.grpc_path = m->grpc_path.c_str();
            out.verb = r->verb.c_str();
            out.pattern = r->pattern.c_str();
            out.body = r->body.c_str();
            out.response_body = r->response_body.c_str();
            out.server_streaming = m->md->server_streaming();
            out.client_streaming = m->md->client_streaming();
            cb(&out, arg);
        }
    }
}

int tc_file_deps(const uint8_t *file, size_t n, void (*cb)(const char *name, bool self, void *arg),
                 void *arg)
{
    pb::FileDescriptorProto f;

    if (n > INT32_MAX || !f.ParseFromArray(file, (int)n))
        return -1;
    cb(f.name().c_str(), true, arg);
    for (const auto &d : f.dependency())
        cb(d.c_str(), false, arg);
    return 0;
}

bool tc_method_has_field(const struct tc_method *m, const char *path, size_t len)
{
    std::string why;

    return walk(m->md->input_type(), std::string(path, len), nullptr, &why) != nullptr;
}

int tc_request_build(const struct tc_method *m, const char *body_field, const char *body,
                     size_t blen, const struct tc_param *params, size_t n, struct evbuffer *out,
                     char *err, size_t errlen)
{
    const pb::Descriptor *in = m->md->input_type();
    pb::util::TypeResolver *res = m->pool->resolver.get();
    pb::util::JsonParseOptions opts;
    std::string msg, part;
    pb::util::Status st;

    opts.ignore_unknown_fields = false;
    if (blen > 0 && body_field[0] != '\0') {
        if (std::strcmp(body_field, "*") == 0) {
            st = pb::util::JsonToBinaryString(res, m->in_url, pb::StringPiece(body, blen), &msg,
                                              opts);
        } else {
            const pb::FieldDescriptor *f = in->FindFieldByName(body_field);

            if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE && !f->is_repeated()) {
                // The body is that field's message: parsed as such, then
                // placed as field |f| of the request (wire concatenation merges).
                st = pb::util::JsonToBinaryString(
                    res, std::string(kUrlPrefix) + "/" + f->message_type()->full_name(),
                    pb::StringPiece(body, blen), &part, opts);
                if (st.ok()) {
                    pb::io::StringOutputStream sos(&msg);
                    pb::io::CodedOutputStream cos(&sos);

                    pb::internal::WireFormatLite::WriteBytes(f->number(), part, &cos);
                }
            } else {
                std::string wrapped = "{";

                append_json_string(&wrapped, f->name().data(), f->name().size());
                wrapped.push_back(':');
                wrapped.append(body, blen);
                wrapped.push_back('}');
                st = pb::util::JsonToBinaryString(res, m->in_url, wrapped, &msg, opts);
            }
        }
        if (!st.ok()) {
            set_err(err, errlen, status_text(st));
            return -1;
        }
    }
    if (n > 0) {
        Node root;
        std::string json;

        for (size_t i = 0; i < n; i++) {
            std::vector<const pb::FieldDescriptor *> chain;
            std::string why, tok;
            std::string path(params[i].path, params[i].plen);
            std::string value(params[i].value, params[i].vlen);
            const pb::FieldDescriptor *f = walk(in, path, &chain, &why);
            Node *node = &root;

            if (f == nullptr || !value_token(f, value, &tok, &why)) {
                set_err(err, errlen, why);
                return -1;
            }
            for (const pb::FieldDescriptor *c : chain)
                node = &node->kids[c->name()];
            if (!node->kids.empty()) {
                set_err(err, errlen, "field '" + path + "' given as a value and as a message");
                return -1;
            }
            node->leaf = true;
            node->repeated = f->is_repeated();
            if (!node->repeated)
                node->values.clear();
            node->values.push_back(tok);
        }
        render(root, &json);
        part.clear();
        st = pb::util::JsonToBinaryString(res, m->in_url, json, &part, opts);
        if (!st.ok()) {
            set_err(err, errlen, status_text(st));
            return -1;
        }
        if (msg.empty()) {
            msg.swap(part);
        } else {
            // Body and parameters both set fields: merged (later fields win,
            // embedded messages merge) and written once, so the backend gets
            // one canonical message whatever its parser does with repeats.
            std::unique_ptr<pb::Message> dm(m->pool->factory->GetPrototype(in)->New());

            msg += part;
            if (!dm->ParseFromString(msg) || !dm->SerializeToString(&msg)) {
                set_err(err, errlen, "cannot merge the body with the URL's fields");
                return -1;
            }
        }
    }
    frame_append(out, msg);
    return 0;
}

int tc_response_json(const struct tc_method *m, const char *response_body, const uint8_t *msg,
                     size_t n, struct evbuffer *out, char *err, size_t errlen)
{
    pb::util::JsonPrintOptions opts;
    std::string json;
    pb::util::Status st;

    std::string bin;

    if (response_body[0] != '\0')
        opts.always_print_primitive_fields = true; // the field even at its default
    {
        // BinaryToJsonString prints what is on the wire, and some encoders
        // (protobufjs) write proto3 fields at their default value, which the
        // JSON mapping omits: the message is parsed and written again first,
        // as MessageToJsonString does.
        std::unique_ptr<pb::Message> dm(
            m->pool->factory->GetPrototype(m->md->output_type())->New());

        if (n > INT32_MAX || !dm->ParseFromArray(msg, (int)n) || !dm->SerializeToString(&bin)) {
            set_err(err, errlen, "not a " + m->md->output_type()->full_name() + " message");
            return -1;
        }
    }
    st = pb::util::BinaryToJsonString(m->pool->resolver.get(), m->out_url, bin, &json, opts);
    if (!st.ok()) {
        set_err(err, errlen, status_text(st));
        return -1;
    }
    if (response_body[0] != '\0') {
        const pb::FieldDescriptor *f = m->md->output_type()->FindFieldByName(response_body);
        json_t *root = json_loadb(json.data(), json.size(), 0, nullptr);
        json_t *v = root != nullptr ? json_object_get(root, f->json_name().c_str()) : nullptr;
        char *text;

        if (v == nullptr) {
            // An unset message field: protobuf prints nothing for it.
            evbuffer_add(out, f->is_repeated() ? "[]" : "{}", 2);
            json_decref(root);
            return 0;
        }
        text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (text != nullptr)
            evbuffer_add(out, text, std::strlen(text));
        std::free(text);
        json_decref(root);
        return 0;
    }
    evbuffer_add(out, json.data(), json.size());
    return 0;
}

int tc_status_details_json(const struct tc_pool *p, const uint8_t *status, size_t n,
                           struct evbuffer *out)
{
    pb::UnknownFieldSet set;
    std::string arr = "[";
    bool first = true;

    // google.rpc.Status: code 1, message 2, details 3 (google.protobuf.Any:
    // type_url 1, value 2).
    if (n > INT32_MAX || !set.ParseFromArray(status, (int)n))
        return -1;
    for (int i = 0; i < set.field_count(); i++) {
        pb::UnknownFieldSet any;
        std::string url, value, json;

        if (set.field(i).number() != 3 ||
            set.field(i).type() != pb::UnknownField::TYPE_LENGTH_DELIMITED ||
            !any.ParseFromString(set.field(i).length_delimited()))
            continue;
        for (int j = 0; j < any.field_count(); j++) {
            if (any.field(j).type() != pb::UnknownField::TYPE_LENGTH_DELIMITED)
                continue;
            if (any.field(j).number() == 1)
                url = any.field(j).length_delimited();
            else if (any.field(j).number() == 2)
                value = any.field(j).length_delimited();
        }
        if (p == nullptr ||
            !pb::util::BinaryToJsonString(p->resolver.get(), url, value, &json).ok())
            continue; // a type this pool does not know
        if (!first)
            arr.push_back(',');
        first = false;
        arr += "{\"@type\":";
        append_json_string(&arr, url.data(), url.size());
        if (json.size() > 2 && json[0] == '{') {
            arr.push_back(',');
            arr.append(json, 1, std::string::npos);
        } else if (json[0] == '{') {
            arr.push_back('}');
        } else {
            arr += ",\"value\":" + json + "}";
        }
    }
    arr.push_back(']');
    evbuffer_add(out, arr.data(), arr.size());
    return 0;
}

} // extern "C"
