import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { parseConfig } from './state/config';
import './styles.css';

const config = parseConfig(window.location.search, window.location.hostname);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App config={config} />
  </StrictMode>,
);
