import { type BackendInfo, parseBackendPreference, selectBackend } from '../../src/model/network/backend.ts';

/** The backend unit tests run on: SUPSUPD_TEST_BACKEND (auto|tensorflow|wasm|cpu), default wasm. */
export function testBackend(): Promise<BackendInfo> {
  return selectBackend(parseBackendPreference(process.env.SUPSUPD_TEST_BACKEND ?? 'wasm'));
}
