/** The task JSON lives in shared/ (webhook deliveries send it too); the API's routes import it from here. */
export { isTerminal, taskJson, type TaskJson } from '../../shared/tasks/task-json.ts';
