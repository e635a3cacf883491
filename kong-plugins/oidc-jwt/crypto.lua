-- Signature verification with OpenSSL's libcrypto through LuaJIT's FFI.
--
-- Kong's nginx is linked with libcrypto, so its symbols are in ffi.C (lua-resty-openssl calls them
-- the same way); plain LuaJIT (the tests) loads the shared library. The declarations below may
-- already exist when lua-resty-openssl was loaded first: each is declared on its own, and one that
-- is already there is kept.
local ffi = require "ffi"

local M = {}

local DECLARATIONS = {
  "typedef struct evp_pkey_st EVP_PKEY;",
  "typedef struct evp_md_ctx_st EVP_MD_CTX;",
  "typedef struct evp_md_st EVP_MD;",
  "typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;",
  "typedef struct engine_st ENGINE;",
  "EVP_PKEY *d2i_PUBKEY(EVP_PKEY **a, const unsigned char **pp, long length);",
  "void EVP_PKEY_free(EVP_PKEY *pkey);",
  "EVP_MD_CTX *EVP_MD_CTX_new(void);",
  "void EVP_MD_CTX_free(EVP_MD_CTX *ctx);",
  "const EVP_MD *EVP_sha256(void);",
  "int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey);",
  "int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen);",
  "void ERR_clear_error(void);",
}
for _, declaration in ipairs(DECLARATIONS) do
  pcall(ffi.cdef, declaration)
end

local function libcrypto()
  if pcall(function() return ffi.C.EVP_DigestVerify end) then
    return ffi.C
  end
  for _, name in ipairs({ "crypto", "libcrypto.so.3", "libcrypto.so.1.1" }) do
    local ok, lib = pcall(ffi.load, name)
    if ok then
      return lib
    end
  end
  error("libcrypto is not available")
end

local C = libcrypto()

-- A public key from its DER SubjectPublicKeyInfo; nil and a message when it does not parse.
function M.public_key(spki_der)
  local buffer = ffi.new("const unsigned char *[1]", ffi.cast("const unsigned char *", spki_der))
  local key = C.d2i_PUBKEY(nil, buffer, #spki_der)
  if key == nil then
    C.ERR_clear_error()
    return nil, "not a public key"
  end
  return ffi.gc(key, C.EVP_PKEY_free)
end

-- Whether `signature` (PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC) signs `message` with
-- SHA-256 under `key`. Any failure is a failed verification.
function M.verify_sha256(key, message, signature)
  local ctx = C.EVP_MD_CTX_new()
  if ctx == nil then
    return false
  end
  ctx = ffi.gc(ctx, C.EVP_MD_CTX_free)
  if C.EVP_DigestVerifyInit(ctx, nil, C.EVP_sha256(), nil, key) ~= 1 then
    C.ERR_clear_error()
    return false
  end
  local verified = C.EVP_DigestVerify(ctx, signature, #signature, message, #message) == 1
  C.ERR_clear_error()
  return verified
end

return M
