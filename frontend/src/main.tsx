import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { parseConfig, parseServedConfig } from './state/config';
import './styles.css';

// `meshlog demo`'s page server says where its simulation service is (see state/config.ts).
const served = parseServedConfig(document.querySelector('meta[name="meshlog-config"]')?.getAttribute('content'));
const config = parseConfig(window.location.search, window.location.hostname, served);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App config={config} />
  </StrictMode>,
);
