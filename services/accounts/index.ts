export { createAccountService } from "./account-service.js";
export { type AccountStore, createAccountStore } from "./account-store.js";
export { type Authenticator, createAuthenticator } from "./authenticator.js";
export { type BootstrapResult, bootstrapAccounts } from "./bootstrap.js";
export { generateApiKey, hashApiKey, hashPassword, maskApiKey } from "./secrets.js";
